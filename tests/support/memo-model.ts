import { IsOptional, IsString, MaxLength } from 'class-validator';
import { Arg, Ctx, Field, ID, InputType, Int, Mutation, ObjectType, Query, Resolver } from 'type-graphql';
import { Column, CreateDateColumn, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { ModelAccessSpec } from '../../src/access/model-access';
import { modelRules } from '../../src/access/model-rules';
import type { Context } from '../../src/context';
import { isUuid } from '../../src/db/uuid';
import { AppError } from '../../src/errors';
import type { Feature } from '../../src/feature';

/**
 * A test-only model governed by the permission layer, with a hand-written CRUD resolver that uses
 * it the way the data API's generated resolvers do: scope in SQL, expose rows with their mask,
 * writable fields checked against the grants.
 */
/** Every field but id is nullable, as the data API makes them: a field a grant does not cover is null with an error at its path. */
@ObjectType({ description: 'Test only: a memo.' })
@Entity('memos')
export class Memo {
  @Field(() => ID, { description: 'Id.' })
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Field(() => ID, { nullable: true, description: 'Owner.' })
  @Column({ type: 'uuid' })
  ownerId!: string;

  @Field({ nullable: true, description: 'Title.' })
  @Column({ type: 'text' })
  title!: string;

  @Field({ nullable: true, description: 'Body.' })
  @Column({ type: 'text', default: '' })
  body!: string;

  @Field({ nullable: true, description: 'Visible to everyone.' })
  @Column({ type: 'boolean', default: false })
  published!: boolean;

  @Field({ nullable: true, description: 'Created.' })
  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;
}

export const MEMOS_TABLE_SQL = `CREATE TABLE memos (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title text NOT NULL,
  body text NOT NULL DEFAULT '',
  published boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now())`;

@InputType({ description: 'Test only.' })
export class MemoInput {
  @Field({ nullable: true, description: 'Title.' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  title?: string;

  @Field({ nullable: true, description: 'Body.' })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  body?: string;

  @Field({ nullable: true, description: 'Published.' })
  published?: boolean;
}

export const MEMO_MODEL: ModelAccessSpec = {
  name: 'Memo',
  ownerField: 'ownerId',
  readableFields: ['id', 'ownerId', 'title', 'body', 'published', 'createdAt'],
  writableFields: ['title', 'body', 'published'],
  filters: { published: { published: true } },
  defaults: [
    { role: 'anonymous', action: 'read', scope: 'all', filter: 'published', fields: ['id', 'title', 'published', 'createdAt'] },
    { role: 'user', action: 'read', scope: 'own' },
    { role: 'user', action: 'create', scope: 'own' },
    { role: 'user', action: 'update', scope: 'own' },
    { role: 'user', action: 'delete', scope: 'own' },
    { role: 'admin', action: 'read', scope: 'all' },
    { role: 'admin', action: 'delete', scope: 'all' },
  ],
};

const inputFields = (input: MemoInput) => Object.keys(input).filter((key) => (input as Record<string, unknown>)[key] !== undefined);

@Resolver(() => Memo)
export class MemoResolver {
  constructor(private readonly dataSource: DataSource) {}

  @Query(() => [Memo], { description: 'Test only.' })
  async memos(
    @Arg('first', () => Int, { defaultValue: 20, description: 'Page size.' }) first: number,
    @Ctx() context: Context,
  ): Promise<Memo[]> {
    const scope = context.access.scope(MEMO_MODEL, 'read');
    const where = scope.where();
    if (!where) return [];
    const rows = await this.dataSource.getRepository(Memo).find({ where, order: { createdAt: 'ASC', id: 'ASC' }, take: first });
    return rows.map((row) => scope.expose(row));
  }

  @Query(() => Memo, { description: 'Test only.' })
  async memo(@Arg('id', () => ID) id: string, @Ctx() context: Context): Promise<Memo> {
    const scope = context.access.scope(MEMO_MODEL, 'read');
    const row = await this.findIn(scope.where({ id }));
    return scope.expose(row);
  }

  @Mutation(() => Memo, { description: 'Test only.' })
  async createMemo(@Arg('input') input: MemoInput, @Ctx() context: Context): Promise<Memo> {
    const scope = context.access.scope(MEMO_MODEL, 'create');
    const clauses = scope.writableClauses(inputFields(input));
    const row = Object.assign(new Memo(), { title: '', body: '', published: false, ...input, ownerId: context.viewer.userId });
    if (!scope.admits(row, clauses)) throw new AppError('FORBIDDEN', 'You may not create this memo.');
    const saved = await this.dataSource.getRepository(Memo).save(row);
    return context.access.scope(MEMO_MODEL, 'read').expose(saved);
  }

  @Mutation(() => Memo, { description: 'Test only.' })
  async updateMemo(@Arg('id', () => ID) id: string, @Arg('input') input: MemoInput, @Ctx() context: Context): Promise<Memo> {
    const scope = context.access.scope(MEMO_MODEL, 'update');
    const clauses = scope.writableClauses(inputFields(input));
    const saved = await this.dataSource.transaction(async (manager) => {
      const where = isUuid(id) ? scope.where({ id }, clauses) : null;
      const row = where ? await manager.findOne(Memo, { where, lock: { mode: 'pessimistic_write' } }) : null;
      if (!row) throw notFound();
      Object.assign(row, input);
      if (!scope.admits(row, clauses)) throw new AppError('FORBIDDEN', 'You may not make this change.');
      return manager.save(row);
    });
    return context.access.scope(MEMO_MODEL, 'read').expose(saved);
  }

  @Mutation(() => Boolean, { description: 'Test only.' })
  async deleteMemo(@Arg('id', () => ID) id: string, @Ctx() context: Context): Promise<boolean> {
    const where = isUuid(id) ? context.access.scope(MEMO_MODEL, 'delete').where({ id }) : null;
    // Check and delete in one transaction, the row locked between them.
    const deleted =
      where &&
      (await this.dataSource.transaction(async (manager) => {
        const row = await manager.findOne(Memo, { where, lock: { mode: 'pessimistic_write' } });
        if (row) await manager.delete(Memo, { id: row.id });
        return row !== null;
      }));
    if (!deleted) throw notFound();
    return true;
  }

  private async findIn(where: Record<string, unknown>[] | null): Promise<Memo> {
    const row =
      where && where.every((condition) => isUuid(String(condition.id)))
        ? await this.dataSource.getRepository(Memo).findOne({ where })
        : null;
    if (!row) throw notFound();
    return row;
  }
}

function notFound(): AppError {
  return new AppError('NOT_FOUND', 'No such memo.');
}

export const memoFeature: Feature = {
  name: 'memos',
  resolvers: [MemoResolver],
  rules: modelRules(MEMO_MODEL, {
    query: { memos: 'read', memo: 'read' },
    mutation: { createMemo: 'create', updateMemo: 'update', deleteMemo: 'delete' },
  }),
  wire: ({ dataSource }) => [new MemoResolver(dataSource)],
  models: [MEMO_MODEL],
  entities: [Memo],
};
