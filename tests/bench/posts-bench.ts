import type { DataSource } from 'typeorm';
import { createBenchUser, graphql } from './sign-in-bench';

/**
 * The published posts the posts-100 scenario lists: a few authors, each with a Profile (its
 * displayName is what the page shows), and more posts than a page, spread across them.
 */
const AUTHORS = 5;
/** Past one page, so the list reads its extra row and reports a next page, as on a real feed. */
const POSTS = 120;
const TITLE_PREFIX = 'bench post ';
/** A short paragraph (about 300 characters): the page's size on the wire is part of its cost. */
const POST_BODY = 'A post the bench lists: long enough to stand for a short paragraph of an app feed. '.repeat(4).trim();

const CREATE_PROFILE = 'mutation($input: CreateProfileInput!) { createProfile(input: $input) { id } }';

/**
 * Authors sign up and create their profiles over the API, like any app's users; their posts go
 * in with one INSERT (a page's worth of createPost calls would only slow the start).
 */
export async function seedPublishedPosts(endpoint: string, dataSource: DataSource): Promise<void> {
  // With DATABASE_URL set, posts outlive runs: an earlier run's would make the page a mix of runs.
  await dataSource.query('DELETE FROM posts WHERE starts_with(title, $1)', [TITLE_PREFIX]);
  const authorIds: string[] = [];
  for (let index = 1; index <= AUTHORS; index += 1) {
    const author = await createBenchUser(endpoint);
    const body = await graphql<{ createProfile: { id: string } }>(endpoint, CREATE_PROFILE, { input: { displayName: `Bench author ${index}` } }, author.accessToken);
    if (!body.data?.createProfile) throw new Error(`createProfile of bench author ${index} failed: ${JSON.stringify(body.errors)}`);
    authorIds.push(author.id);
  }
  // Dated before anything an app or the test suite writes: the list's default order is oldest
  // first, so on a shared database too the page is the bench's own posts.
  await dataSource.query(
    `INSERT INTO posts (author_id, title, body, published, created_at)
     SELECT ($1::uuid[])[1 + n % cardinality($1::uuid[])], $2 || lpad(n::text, 3, '0'), $3, true, '2000-01-01'::timestamptz + n * interval '1 minute'
     FROM generate_series(1, $4) AS n`,
    [authorIds, TITLE_PREFIX, POST_BODY, POSTS],
  );
  await dataSource.query('ANALYZE posts');
}
