import { Field, ID, Int, ObjectType } from 'type-graphql';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import type { DefaultGrant } from '../../../src/access/model-access';
import { Encrypted } from '../../../src/crypto/encrypted-column';
import {
  DefineModelOptions,
  ModelDefinition,
  ModelDefinitionError,
  ModelHandle,
  defineModel,
  pluralOf,
  resolveModel,
} from '../../../src/data/define-model';

/**
 * Throwaway model classes, one per case: type-graphql keeps its metadata in one global store,
 * so every type name here is unique (Dm…) and none is Profile, Post, Comment or Memo.
 */

const noModels = (entity: Function): ModelDefinition => {
  throw new Error(`no model resolved for ${entity.name}`);
};
const resolve = (handle: ModelHandle) => resolveModel(handle, noModels);
const DEFAULTS: readonly DefaultGrant[] = [{ role: 'user', action: 'read', scope: 'own' }];

/** resolveModel's error for a handle: a ModelDefinitionError naming the model. */
function problemOf(handle: ModelHandle): ModelDefinitionError {
  try {
    resolve(handle);
  } catch (error) {
    expect(error).toBeInstanceOf(ModelDefinitionError);
    return error as ModelDefinitionError;
  }
  throw new Error('resolveModel accepted the definition');
}

describe('pluralOf', () => {
  it.each([
    ['post', 'posts'],
    ['category', 'categories'],
    ['address', 'addresses'],
    ['box', 'boxes'],
    ['day', 'days'],
    ['key', 'keys'],
    ['status', 'statuses'],
    ['match', 'matches'],
    ['wish', 'wishes'],
    ['blogPost', 'blogPosts'],
    ['storyEntry', 'storyEntries'],
    ['person', 'people'],
    ['child', 'children'],
    ['teamPerson', 'teamPeople'],
  ])('%s → %s', (singular, plural) => {
    expect(pluralOf(singular)).toBe(plural);
  });
});

describe('resolveModel', () => {
  describe('a correct definition', () => {
    @ObjectType('DmReply', { description: 'Test only: a reply.' })
    @Entity('dm_replies')
    class DmReplyEntity {
      @Field(() => ID, { description: 'Id.' })
      @PrimaryGeneratedColumn('uuid')
      id!: string;

      @Field(() => ID, { nullable: true, description: 'The article.' })
      @Column({ type: 'uuid' })
      articleId!: string;
    }

    @ObjectType('DmArticle', { description: 'Test only: an article.' })
    @Entity('dm_articles')
    class DmArticleEntity {
      @Field(() => ID, { description: 'Id.' })
      @PrimaryGeneratedColumn('uuid')
      id!: string;

      @Field(() => ID, { nullable: true, description: 'The author.' })
      @Column({ type: 'uuid' })
      authorId!: string;

      @Field({ nullable: true, description: 'The headline.' })
      @Column({ type: 'text', name: 'headline' })
      title!: string;

      @Field({ nullable: true, description: 'Body.' })
      @Column({ type: 'text', default: '' })
      body!: string;

      @Field(() => String, { nullable: true, description: 'Subtitle.' })
      @Column({ type: 'text', nullable: true })
      subtitle!: string | null;

      @Field(() => Int, { nullable: true, description: 'Views.' })
      @Column({ type: 'int', default: 0 })
      viewCount!: number;

      @Field({ nullable: true, description: 'Rating.' })
      @Column({ type: 'double precision' })
      rating!: number;

      @Field({ nullable: true, description: 'Featured.' })
      @Column({ type: 'boolean', default: false })
      featured!: boolean;

      @Field(() => String, { nullable: true, description: 'A secret, searchable by equality.' })
      @Encrypted({ blindIndex: {} })
      secret!: string;

      /** Set from `secret`. */
      secretIndex!: string;

      @Field({ nullable: true, description: 'Created.' })
      @CreateDateColumn({ type: 'timestamptz', precision: 3 })
      createdAt!: Date;

      @Field({ nullable: true, description: 'Changed.' })
      @UpdateDateColumn({ type: 'timestamptz', precision: 3 })
      updatedAt!: Date;

      @Field(() => String, { nullable: true, description: 'Computed, not stored.' })
      get shout(): string {
        return this.title.toUpperCase();
      }
    }

    const handle = defineModel(DmArticleEntity, {
      owner: 'authorId',
      writable: ['title', 'body', 'subtitle', 'viewCount', 'rating', 'featured', 'secret'],
      filterable: ['authorId', 'title', 'secret', 'createdAt'],
      sortable: ['createdAt', 'title', 'rating'],
      filters: { featured: { featured: true } },
      relations: {
        replies: {
          kind: 'many',
          model: () => DmReplyEntity,
          by: 'articleId',
          description: 'Replies.',
          count: { name: 'replyCount', description: 'How many replies.' },
        },
        latestReply: { kind: 'many', model: () => DmReplyEntity, by: 'articleId', description: 'No count.' },
        author: { kind: 'one', model: () => DmReplyEntity, by: 'authorId', to: 'articleId', description: 'One, by another key.' },
      },
      defaults: DEFAULTS,
    });
    const resolved: Function[] = [];
    const replyDefinition = { name: 'DmReply' } as ModelDefinition;
    const definition = resolveModel(handle, (entity) => {
      resolved.push(entity);
      return replyDefinition;
    });
    const fieldNamed = (name: string) => definition.fields.find((candidate) => candidate.name === name);

    it('takes names from the GraphQL type and the table from @Entity', () => {
      expect(definition).toMatchObject({
        entity: DmArticleEntity,
        name: 'DmArticle',
        description: 'Test only: an article.',
        table: 'dm_articles',
        singular: 'dmArticle',
        plural: 'dmArticles',
      });
      expect(resolve(defineModel(DmArticleEntity, { writable: [], defaults: [], plural: 'articlesFeed' })).plural).toBe('articlesFeed');
    });

    it('lists the stored fields with columns and kinds; computed fields and the blind index column are no fields', () => {
      expect(definition.fields.map((candidate) => [candidate.name, candidate.column, candidate.kind])).toEqual([
        ['id', 'id', 'id'],
        ['authorId', 'author_id', 'id'],
        ['title', 'headline', 'string'],
        ['body', 'body', 'string'],
        ['subtitle', 'subtitle', 'string'],
        ['viewCount', 'view_count', 'int'],
        ['rating', 'rating', 'float'],
        ['featured', 'featured', 'boolean'],
        ['secret', 'secret', 'string'],
        ['createdAt', 'created_at', 'datetime'],
        ['updatedAt', 'updated_at', 'datetime'],
      ]);
    });

    it('marks each field filterable, sortable, writable and required on create as declared', () => {
      const flags = (name: string) => {
        const found = fieldNamed(name)!;
        return {
          filterable: found.filterable,
          sortable: found.sortable,
          writable: found.writable,
          requiredOnCreate: found.requiredOnCreate,
          nullable: found.nullable,
        };
      };
      expect(flags('title')).toEqual({ filterable: true, sortable: true, writable: true, requiredOnCreate: true, nullable: false });
      expect(flags('body')).toEqual({ filterable: false, sortable: false, writable: true, requiredOnCreate: false, nullable: false }); // has a default
      expect(flags('subtitle')).toEqual({ filterable: false, sortable: false, writable: true, requiredOnCreate: false, nullable: true });
      expect(flags('rating')).toEqual({ filterable: false, sortable: true, writable: true, requiredOnCreate: true, nullable: false });
      expect(flags('createdAt')).toEqual({ filterable: true, sortable: true, writable: false, requiredOnCreate: false, nullable: false });
      expect(flags('id')).toEqual({ filterable: false, sortable: false, writable: false, requiredOnCreate: false, nullable: false });
    });

    it('knows encrypted fields and their blind index column', () => {
      expect(fieldNamed('secret')).toMatchObject({ encrypted: true, blindIndexColumn: 'secret_index', filterable: true });
      expect(fieldNamed('title')).toMatchObject({ encrypted: false, blindIndexColumn: null });
    });

    it('resolves the owner and the relations; targets lazily, through byEntity', () => {
      expect(definition.ownerField).toBe(fieldNamed('authorId'));
      expect(definition.relations.map(({ name, kind, by, to, count }) => ({ name, kind, by, to, count }))).toEqual([
        { name: 'replies', kind: 'many', by: 'articleId', to: 'id', count: { name: 'replyCount', description: 'How many replies.' } },
        { name: 'latestReply', kind: 'many', by: 'articleId', to: 'id', count: null },
        { name: 'author', kind: 'one', by: 'authorId', to: 'articleId', count: null },
      ]);
      expect(resolved).toEqual([]);
      expect(definition.relations[0].target()).toBe(replyDefinition);
      expect(resolved).toEqual([DmReplyEntity]);
    });

    it('gives the permission layer its access spec: readable fields with relations and counts, writable fields, filters, defaults', () => {
      expect(definition.access).toEqual({
        name: 'DmArticle',
        ownerField: 'authorId',
        readableFields: [
          'id',
          'authorId',
          'title',
          'body',
          'subtitle',
          'viewCount',
          'rating',
          'featured',
          'secret',
          'createdAt',
          'updatedAt',
          'replies',
          'replyCount',
          'latestReply',
          'author',
        ],
        writableFields: ['title', 'body', 'subtitle', 'viewCount', 'rating', 'featured', 'secret'],
        filters: { featured: { featured: true } },
        defaults: DEFAULTS,
      });
      expect(definition.access.readableFields).not.toContain('shout'); // not stored: not part of the policy
    });

    it('has no owner for a model without one', () => {
      const ownerless = resolve(defineModel(DmArticleEntity, { writable: ['title'], defaults: [] }));
      expect(ownerless.ownerField).toBeNull();
      expect(ownerless.access.ownerField).toBeNull();
      expect(ownerless.access.readableFields).toEqual([
        'id',
        'authorId',
        'title',
        'body',
        'subtitle',
        'viewCount',
        'rating',
        'featured',
        'secret',
        'createdAt',
        'updatedAt',
      ]);
    });
  });

  describe('refuses, with a clear message', () => {
    @ObjectType('DmLedger', { description: 'Test only: a ledger.' })
    @Entity('dm_ledgers')
    class DmLedger {
      @Field(() => ID, { description: 'Id.' })
      @PrimaryGeneratedColumn('uuid')
      id!: string;

      @Field(() => ID, { nullable: true, description: 'Owner.' })
      @Column({ type: 'uuid' })
      ownerId!: string;

      @Field({ nullable: true, description: 'Label.' })
      @Column({ type: 'text' })
      label!: string;

      @Field(() => String, { nullable: true, description: 'Nickname.' })
      @Column({ type: 'text', nullable: true })
      nickname!: string | null;

      @Field(() => String, { nullable: true, description: 'Searchable secret.' })
      @Encrypted({ blindIndex: {} })
      code!: string;

      @Field(() => String, { nullable: true, description: 'Unsearchable secret.' })
      @Encrypted()
      diary!: string;

      @Field({ nullable: true, description: 'Created.' })
      @CreateDateColumn({ type: 'timestamptz', precision: 3 })
      createdAt!: Date;

      @Field({ nullable: true, description: 'Changed.' })
      @UpdateDateColumn({ type: 'timestamptz', precision: 3 })
      updatedAt!: Date;

      @Field(() => ID, { nullable: true, description: 'Computed.' })
      get derivedId(): string {
        return this.id;
      }
    }

    const ledger = (options: Partial<DefineModelOptions<DmLedger>>) =>
      defineModel(DmLedger, { owner: 'ownerId', writable: ['label'], defaults: [], ...options });

    it('accepts the base definition the cases below each break once', () => {
      expect(() =>
        resolve(ledger({ filterable: ['code', 'label'], sortable: ['label', 'createdAt'], filters: { mine: { label: 'x' } } })),
      ).not.toThrow();
    });

    it('a non-id field that is not nullable in GraphQL', () => {
      @ObjectType('DmStrict', { description: 'Test only.' })
      @Entity('dm_stricts')
      class DmStrict {
        @Field(() => ID, { description: 'Id.' })
        @PrimaryGeneratedColumn('uuid')
        id!: string;

        @Field({ description: 'Name.' })
        @Column({ type: 'text' })
        name!: string;
      }
      const error = problemOf(defineModel(DmStrict, { writable: ['name'], defaults: [] }));
      expect(error.message).toBe(
        'Model DmStrict: name must be @Field({ nullable: true }): a field a role may not read comes back null with an error at its path',
      );
      expect(error.name).toBe('ModelDefinitionError');
    });

    it.each(['id', 'ownerId', 'createdAt', 'updatedAt'] as const)('a writable %s', (property) => {
      expect(problemOf(ledger({ writable: ['label', property] })).message).toBe(
        `Model DmLedger: "${property}" cannot be writable: ids, the owner and timestamps are never set by clients`,
      );
    });

    it('a writable field the class does not store', () => {
      expect(problemOf(ledger({ writable: ['derivedId'] })).message).toBe(
        'Model DmLedger: writable "derivedId" is not a @Field and @Column of the class',
      );
    });

    it('a sortable nullable field', () => {
      expect(problemOf(ledger({ sortable: ['nickname'] })).message).toBe(
        'Model DmLedger: "nickname" cannot be sortable: sort fields must be NOT NULL and not encrypted',
      );
    });

    it('a sortable encrypted field (NOT NULL, even with a blind index)', () => {
      expect(problemOf(ledger({ sortable: ['code'] })).message).toBe(
        'Model DmLedger: "code" cannot be sortable: sort fields must be NOT NULL and not encrypted',
      );
      expect(problemOf(ledger({ sortable: ['diary'] })).message).toMatch(/"diary" cannot be sortable/);
    });

    it('an encrypted filterable field without a blind index', () => {
      expect(problemOf(ledger({ filterable: ['diary'] })).message).toBe(
        'Model DmLedger: "diary" is encrypted without a blind index, so it cannot be filtered',
      );
    });

    it('a named row filter on an encrypted field (with or without a blind index)', () => {
      expect(problemOf(ledger({ filters: { mine: { code: 'x' } } })).message).toBe(
        'Model DmLedger: filter "mine" cannot compare the encrypted "code"',
      );
      expect(problemOf(ledger({ filters: { ok: { label: 'x' }, secretly: { label: 'y', diary: 'z' } } })).message).toBe(
        'Model DmLedger: filter "secretly" cannot compare the encrypted "diary"',
      );
    });

    it('a named row filter on something that is not a stored field', () => {
      expect(problemOf(ledger({ filters: { mine: { derivedId: 'x' } } })).message).toBe(
        'Model DmLedger: filter "mine" names "derivedId", which is not a @Field and @Column',
      );
    });

    it('an owner the class does not have, or does not store', () => {
      expect(problemOf(ledger({ owner: 'userId' as keyof DmLedger })).message).toBe(
        'Model DmLedger: owner "userId" is not a @Field and @Column of the class',
      );
      expect(problemOf(ledger({ owner: 'derivedId' })).message).toBe(
        'Model DmLedger: owner "derivedId" is not a @Field and @Column of the class',
      );
    });

    it('an owner that is not a plain uuid', () => {
      expect(problemOf(ledger({ owner: 'label' })).message).toBe('Model DmLedger: owner "label" must be a plain uuid column typed ID');
    });

    it('anonymize with an owner column that is NOT NULL', () => {
      expect(problemOf(ledger({ onOwnerDeleted: 'anonymize' })).message).toBe(
        `Model DmLedger: owner "ownerId" must be a nullable column for onOwnerDeleted: 'anonymize'`,
      );
    });

    it('a relation named like a field, or a one-relation by a field that does not exist', () => {
      expect(
        problemOf(ledger({ relations: { label: { kind: 'many', model: () => DmLedger, by: 'ownerId', description: 'x' } } })).message,
      ).toBe('Model DmLedger: relation "label" has the name of a field');
      expect(
        problemOf(ledger({ relations: { parent: { kind: 'one', model: () => DmLedger, by: 'parentId', description: 'x' } } })).message,
      ).toBe('Model DmLedger: relation "parent": "parentId" must be a plain (not encrypted) field of the class');
    });

    it('a class without @ObjectType, or without @Entity', () => {
      @Entity('dm_plain')
      class DmPlain {
        @PrimaryGeneratedColumn('uuid')
        id!: string;
      }
      expect(problemOf(defineModel(DmPlain, { writable: [], defaults: [] })).message).toBe(
        'Model DmPlain: the class needs @ObjectType({ description }) as well as @Entity',
      );

      @ObjectType('DmUnstored', { description: 'Test only.' })
      class DmUnstored {
        @Field(() => ID, { description: 'Id.' })
        id!: string;
      }
      expect(problemOf(defineModel(DmUnstored, { writable: [], defaults: [] })).message).toBe(
        `Model DmUnstored: the class needs @Entity('table_name')`,
      );
    });
  });
});
