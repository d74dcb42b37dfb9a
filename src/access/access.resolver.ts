import { Arg, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { actorOf } from '../audit/actor';
import type { UserDirectory } from '../accounts/user-directory.service';
import { User } from '../accounts/user.entity';
import type { Context } from '../context';
import { AssignRoleInput, CreateRoleInput, GrantPermissionInput, PermissionGrantType, RoleType } from './access.types';
import type { PolicyService } from './policy.service';

/** Roles and grants, for admins (every field is ruled isAdmin). */
@Resolver()
export class AccessResolver {
  constructor(
    private readonly policy: PolicyService,
    private readonly users: UserDirectory,
  ) {}

  @Query(() => [RoleType], { description: 'Every role, built-in first, then by name.' })
  roles(@Ctx() context: Context): RoleType[] {
    return context.access.policy.roles
      .sort((a, b) => Number(b.builtIn) - Number(a.builtIn) || a.name.localeCompare(b.name))
      .map((role) => RoleType.of(role));
  }

  @Query(() => [PermissionGrantType], {
    description: 'The whole policy for models, exactly as this request enforces it: every grant, by model, action and role.',
  })
  permissionMatrix(@Ctx() context: Context): PermissionGrantType[] {
    return context.access.policy.grants.map((grant) => PermissionGrantType.of(grant));
  }

  @Mutation(() => RoleType, { description: 'Creates a custom role. Give it grants (grantPermission) and members (assignRole).' })
  async createRole(@Arg('input') input: CreateRoleInput, @Ctx() context: Context): Promise<RoleType> {
    return RoleType.of(await this.policy.createRole(input, actorOf(context)));
  }

  @Mutation(() => Boolean, {
    description: 'Deletes a custom role with its grants; its members lose it at their next request. Built-in roles cannot be deleted.',
  })
  async deleteRole(@Arg('name') name: string, @Ctx() context: Context): Promise<boolean> {
    await this.policy.deleteRole(name, actorOf(context));
    return true;
  }

  @Mutation(() => User, { description: 'Gives a user a role, in force at their next request.' })
  async assignRole(@Arg('input') input: AssignRoleInput, @Ctx() context: Context): Promise<User> {
    await this.policy.assignRole(input.userId, input.role, actorOf(context));
    return this.users.find(input.userId);
  }

  @Mutation(() => User, {
    description: 'Takes a role from a user, in force at their next request. The last active admin keeps admin (CONFLICT).',
  })
  async unassignRole(@Arg('input') input: AssignRoleInput, @Ctx() context: Context): Promise<User> {
    await this.policy.unassignRole(input.userId, input.role, actorOf(context));
    return this.users.find(input.userId);
  }

  @Mutation(() => PermissionGrantType, {
    description: 'Grants a role an action on a model, in force at the next request on every instance.',
  })
  async grantPermission(@Arg('input') input: GrantPermissionInput, @Ctx() context: Context): Promise<PermissionGrantType> {
    return PermissionGrantType.of(await this.policy.grantPermission(input, actorOf(context)));
  }

  @Mutation(() => Boolean, {
    description: 'Removes a grant (by its id from permissionMatrix), in force at the next request on every instance.',
  })
  async revokePermission(@Arg('id', () => ID) id: string, @Ctx() context: Context): Promise<boolean> {
    await this.policy.revokePermission(id, actorOf(context));
    return true;
  }
}
