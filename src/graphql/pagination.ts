import { Max, Min } from 'class-validator';
import { ArgsType, Field, Int, ObjectType } from 'type-graphql';
import { AppError } from '../errors';

/** The largest page any list returns (docs/security.md#gql-9): a bigger `first` is refused, not clamped. */
export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;

@ObjectType({ description: 'Where a page of a list ends (Relay cursor connections).' })
export class PageInfo {
  @Field({ description: 'More items follow: ask again with `after: endCursor`.' })
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true, description: 'Cursor of the last item of this page; null for an empty page.' })
  endCursor!: string | null;
}

@ArgsType()
export class PageArgs {
  @Field(() => Int, { defaultValue: DEFAULT_PAGE_SIZE, description: `How many items, 1 to ${MAX_PAGE_SIZE}.` })
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  first: number = DEFAULT_PAGE_SIZE;

  @Field(() => String, { nullable: true, description: 'Start after this cursor (pageInfo.endCursor of the previous page).' })
  after?: string | null;
}

/** An opaque cursor: the sort key of one item. Clients pass it back unchanged. */
export function encodeCursor(key: readonly (string | number | boolean)[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/** The sort key inside a cursor; BAD_USER_INPUT for anything this server did not hand out in that shape. */
export function decodeCursor(cursor: string, shape: readonly ('string' | 'number' | 'boolean')[]): (string | number | boolean)[] {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  if (!Array.isArray(key) || key.length !== shape.length || key.some((part, index) => typeof part !== shape[index])) throw invalidCursor();
  return key as (string | number | boolean)[];
}

export function invalidCursor(): AppError {
  return new AppError('BAD_USER_INPUT', 'The cursor is not valid: pass pageInfo.endCursor from the previous page unchanged.', {
    details: { field: 'after' },
  });
}
