import type { DataSource } from 'typeorm';
import { BenchUser, createBenchUser, graphql } from './sign-in-bench';

/**
 * The bench's posts, shaped like an app's feed table: 100,000 posts, of which the reader (the bench
 * user every signed-in scenario acts as) owns 1,000 drafts, and a few other authors own the rest:
 * 120 published posts (the public feed) and drafts only their authors may read. Every author and
 * the reader have a Profile, so `author { displayName }` is never null.
 */
const AUTHORS = 5;
/** Past one page, so the published list reads its extra row and reports a next page, as on a real feed. */
const PUBLISHED_POSTS = 120;
export const READER_POSTS = 1_000;
export const TOTAL_POSTS = 100_000;
const TITLE_PREFIX = 'bench post ';
/** A short paragraph (about 300 characters): the page's size on the wire is part of its cost. */
const POST_BODY = 'A post the bench lists: long enough to stand for a short paragraph of an app feed. '.repeat(4).trim();

const CREATE_PROFILE = 'mutation($input: CreateProfileInput!) { createProfile(input: $input) { id } }';

export interface BenchData {
  /** Signed in for the scenarios; owns READER_POSTS drafts, dated before every other post. */
  readonly reader: BenchUser;
}

async function createProfile(endpoint: string, user: BenchUser, displayName: string): Promise<void> {
  const body = await graphql<{ createProfile: { id: string } }>(endpoint, CREATE_PROFILE, { input: { displayName } }, user.accessToken);
  if (!body.data?.createProfile) throw new Error(`createProfile of ${displayName} failed: ${JSON.stringify(body.errors)}`);
}

/**
 * Users sign up and create their profiles over the API, like any app's users; the posts go in with
 * a few INSERTs (100,000 createPost calls would only slow the start).
 */
export async function seedBenchData(endpoint: string, dataSource: DataSource): Promise<BenchData> {
  // With DATABASE_URL set, posts outlive runs: an earlier run's would make the pages a mix of runs.
  await dataSource.query('DELETE FROM posts WHERE starts_with(title, $1)', [TITLE_PREFIX]);
  const reader = await createBenchUser(endpoint);
  await createProfile(endpoint, reader, 'Bench reader');
  const authorIds: string[] = [];
  for (let index = 1; index <= AUTHORS; index += 1) {
    const author = await createBenchUser(endpoint);
    await createProfile(endpoint, author, `Bench author ${index}`);
    authorIds.push(author.id);
  }
  // Dated before anything an app or the test suite writes: the lists' default order is oldest
  // first, so on a shared database too the pages are the bench's own posts. The reader's drafts
  // come first (their feed is their own 1,000 and the public posts), then the published posts.
  await dataSource.query(
    `INSERT INTO posts (author_id, title, body, published, created_at)
     SELECT $1, $2 || 'draft ' || lpad(n::text, 4, '0'), $3, false, '1999-01-01'::timestamptz + n * interval '1 minute'
     FROM generate_series(1, $4) AS n`,
    [reader.id, TITLE_PREFIX, POST_BODY, READER_POSTS],
  );
  await dataSource.query(
    `INSERT INTO posts (author_id, title, body, published, created_at)
     SELECT ($1::uuid[])[1 + n % cardinality($1::uuid[])], $2 || lpad(n::text, 3, '0'), $3, true, '2000-01-01'::timestamptz + n * interval '1 minute'
     FROM generate_series(1, $4) AS n`,
    [authorIds, TITLE_PREFIX, POST_BODY, PUBLISHED_POSTS],
  );
  await dataSource.query(
    `INSERT INTO posts (author_id, title, body, published, created_at)
     SELECT ($1::uuid[])[1 + n % cardinality($1::uuid[])], $2 || 'other draft ' || n, $3, false, '2001-01-01'::timestamptz + n * interval '1 second'
     FROM generate_series(1, $4) AS n`,
    [authorIds, TITLE_PREFIX, POST_BODY, TOTAL_POSTS - READER_POSTS - PUBLISHED_POSTS],
  );
  await dataSource.query('ANALYZE posts');
  return { reader };
}
