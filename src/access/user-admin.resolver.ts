import { Arg, Args, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../context';
import { actorOf } from '../audit/actor';
import { SetUserStatusInput, UserConnection, UsersArgs } from './user-admin.types';
import type { UserDirectory } from '../accounts/user-directory.service';
import { Session } from '../accounts/session.entity';
import { User } from '../accounts/user.entity';

/** Finding and suspending users, listing and ending their sessions, for admins (every field is ruled isAdmin). */
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

  @Query(() => [Session], {
    description:
      "A user's live sessions (devices), most recently used first, as mySessions shows them to that user (current is " +
      'true only for your own); end one with adminRevokeSessions. NOT_FOUND for an unknown user.',
  })
  userSessions(@Arg('userId', () => ID, { description: "The user's id." }) userId: string): Promise<Session[]> {
    return this.directory.sessionsOf(userId);
  }

  @Mutation(() => User, {
    description: 'Suspends an account (every session ends at once; sign-in and refresh are refused) or reactivates it. Not your own.',
  })
  async setUserStatus(@Arg('input') input: SetUserStatusInput, @Ctx() context: Context): Promise<User> {
    return this.directory.setStatus(input.userId, input.status, actorOf(context));
  }

  @Mutation(() => Int, {
    description:
      "Ends one session of a user (sessionId: a sign-in's target in the audit log) or, without sessionId, every one; " +
      'its tokens stop working at their next request on every instance. Returns how many live sessions it ended ' +
      '(0 when that session had already ended). NOT_FOUND for an unknown user, or a session that is not theirs.',
  })
  async adminRevokeSessions(
    @Arg('userId', () => ID, { description: "The user's id." }) userId: string,
    @Arg('sessionId', () => ID, { nullable: true, description: 'One session of theirs; leave out to end all of them.' })
    sessionId: string | null | undefined,
    @Ctx() context: Context,
  ): Promise<number> {
    return this.directory.revokeSessions(userId, sessionId ?? null, actorOf(context));
  }
}
