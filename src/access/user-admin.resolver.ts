import { Arg, Args, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../context';
import { actorOf } from '../audit/actor';
import { SetUserStatusInput, UserConnection, UsersArgs } from './user-admin.types';
import type { UserDirectory } from '../accounts/user-directory.service';
import { User } from '../accounts/user.entity';

/** Finding and suspending users, for admins (every field is ruled isAdmin). */
@Resolver()
export class UserAdminResolver {
  constructor(private readonly directory: UserDirectory) {}

  @Query(() => UserConnection, { description: 'Every account, newest first, filtered and paginated (first ≤ 100).' })
  async users(@Args() args: UsersArgs): Promise<UserConnection> {
    const page = await this.directory.list({ ...args.filter, first: args.first, after: args.after });
    return {
      edges: page.users.map(({ user, cursor }) => ({ cursor, node: user })),
      pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.users.at(-1)?.cursor ?? null },
      totalCount: page.totalCount,
    };
  }

  @Mutation(() => User, {
    description: 'Suspends an account (every session ends at once; sign-in and refresh are refused) or reactivates it. Not your own.',
  })
  async setUserStatus(@Arg('input') input: SetUserStatusInput, @Ctx() context: Context): Promise<User> {
    return this.directory.setStatus(input.userId, input.status, actorOf(context));
  }
}
