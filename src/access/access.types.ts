import { ArrayMaxSize, IsOptional, IsString, MaxLength } from 'class-validator';
import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import type { Action, Grant, RoleDefinition, Scope } from './decision';

/** GraphQL's names for the stored actions and scopes. */
export enum ActionValue {
  READ = 'read',
  CREATE = 'create',
  UPDATE = 'update',
  DELETE = 'delete',
}

export enum ScopeValue {
  OWN = 'own',
  ALL = 'all',
}

registerEnumType(ActionValue, {
  name: 'Action',
  description: 'What a grant allows on a model.',
  valuesConfig: {
    READ: { description: 'List and get rows, and read the granted fields.' },
    CREATE: { description: 'Create rows, setting the granted fields.' },
    UPDATE: { description: 'Change the granted fields of rows in scope.' },
    DELETE: { description: 'Delete rows in scope.' },
  },
});

registerEnumType(ScopeValue, {
  name: 'Scope',
  description: 'Which rows a grant covers.',
  valuesConfig: {
    OWN: { description: "Rows the viewer owns (the model's owner field is the viewer)." },
    ALL: { description: "Every row (narrowed by the grant's filter, if it names one)." },
  },
});

@ObjectType('Role', {
  description: 'A role. Every viewer holds "anonymous", every signed-in account "user"; admins create others and assign them.',
})
export class RoleType {
  @Field({ description: 'Unique name, e.g. "editor".' })
  name!: string;

  @Field(() => String, { nullable: true, description: 'What the role is for.' })
  description!: string | null;

  @Field({ description: 'anonymous, user and admin: they cannot be deleted.' })
  builtIn!: boolean;

  @Field({
    description:
      'Members act with this role only on a session confirmed with the second factor ' +
      '(aal2); otherwise MFA_REQUIRED. As enforced, including BASTION_MFA_REQUIRED_FOR.',
  })
  requireMfa!: boolean;

  static of(role: RoleDefinition): RoleType {
    return Object.assign(new RoleType(), role);
  }
}

@ObjectType('PermissionGrant', {
  description: "One permission: a role may do an action on a model's rows in a scope, for some or all fields.",
})
export class PermissionGrantType {
  @Field(() => ID, { description: 'Pass it to revokePermission.' })
  id!: string;

  @Field({ description: 'The role it is granted to.' })
  role!: string;

  @Field({ description: 'The model\'s GraphQL type name, e.g. "Post".' })
  model!: string;

  @Field(() => ActionValue, { description: 'What it allows.' })
  action!: Action;

  @Field(() => ScopeValue, { description: 'Which rows: OWN or ALL.' })
  scope!: Scope;

  @Field(() => [String], { nullable: true, description: 'The fields it covers; null means every field of the model.' })
  fields!: readonly string[] | null;

  @Field(() => String, {
    nullable: true,
    description: 'A row filter the model defines in code (e.g. "published") that narrows the scope; null for none.',
  })
  filter!: string | null;

  static of(grant: Grant): PermissionGrantType {
    return Object.assign(new PermissionGrantType(), grant);
  }
}

@InputType({ description: 'A new custom role.' })
export class CreateRoleInput {
  @Field({ description: '2–40 characters: lower-case letters, digits, "-" and "_", starting with a letter.' })
  @IsString()
  @MaxLength(40)
  name!: string;

  @Field(() => String, { nullable: true, description: 'What the role is for (at most 200 characters).' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  description?: string | null;

  @Field({ defaultValue: false, description: 'Members act with it only on an aal2 session.' })
  requireMfa: boolean = false;
}

@InputType({ description: 'A user and a role.' })
export class AssignRoleInput {
  @Field(() => ID, { description: "The user's id." })
  @IsString()
  @MaxLength(64)
  userId!: string;

  @Field({ description: 'The role\'s name (not "anonymous" or "user": they are implicit).' })
  @IsString()
  @MaxLength(40)
  role!: string;
}

@InputType({ description: 'A permission to grant.' })
export class GrantPermissionInput {
  @Field({ description: 'The role that receives it.' })
  @IsString()
  @MaxLength(40)
  role!: string;

  @Field({ description: "The model's GraphQL type name (see permissionMatrix for the known ones)." })
  @IsString()
  @MaxLength(100)
  model!: string;

  @Field(() => ActionValue, { description: 'What it allows.' })
  action!: Action;

  @Field(() => ScopeValue, { description: "OWN (the viewer's rows) or ALL." })
  scope!: Scope;

  @Field(() => [String], {
    nullable: true,
    description: 'Fields it covers (readable ones for READ, writable ones for CREATE/UPDATE); leave out for all. Not for DELETE.',
  })
  @IsOptional()
  @ArrayMaxSize(200)
  @IsString({ each: true })
  @MaxLength(100, { each: true })
  fields?: string[] | null;

  @Field(() => String, { nullable: true, description: 'A row filter the model defines, narrowing the scope.' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  filter?: string | null;
}
