import type { TestAccount } from '../../support/factories';

/** The ids the fuzzers draw from: real rows of each sample model, owned by the accounts given. */
export interface FuzzRowIds {
  readonly userIds: string[];
  readonly postIds: string[];
  readonly commentIds: string[];
  readonly profileIds: string[];
}

/** For each account: a profile, a published post and a draft, and a comment on the published post. */
export async function seedFuzzRows(accounts: readonly TestAccount[]): Promise<FuzzRowIds> {
  const ids: FuzzRowIds = { userIds: accounts.map((account) => account.id), postIds: [], commentIds: [], profileIds: [] };
  for (const account of accounts) {
    const created = await account.client.request<{ createProfile: { id: string }; createPost: { id: string }; draft: { id: string } }>(
      'mutation { createProfile(input: { displayName: "Fuzz", phone: "+447700900123" }) { id } ' +
        'createPost(input: { title: "fuzz", body: "text", published: true }) { id } draft: createPost(input: { title: "draft" }) { id } }',
    );
    const { createProfile, createPost, draft } = created.body.data!;
    const comment = await account.client.request<{ createComment: { id: string } }>(
      'mutation($postId: ID!) { createComment(input: { postId: $postId, body: "first" }) { id } }',
      { postId: createPost.id },
    );
    ids.profileIds.push(createProfile.id);
    ids.postIds.push(createPost.id, draft.id);
    ids.commentIds.push(comment.body.data!.createComment.id);
  }
  return ids;
}
