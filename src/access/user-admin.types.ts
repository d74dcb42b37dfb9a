import { IsOptional, IsString, MaxLength, ValidateNested } from 'class-validator';
import { ArgsType, Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { PageArgs, PageInfo } from '../graphql/pagination';
import { User, UserStatus } from '../accounts/user.entity';

@InputType({ description: 'Narrows the users list; all given conditions must hold.' })
export class UserFilter {
  @Field(() => String, { nullable: true, description: 'Exact email address (as the user signs in with it).' })
  @IsOptional()
  @IsString()
  @MaxLength(254)
  email?: string | null;

  @Field(() => UserStatus, { nullable: true, description: 'Only ACTIVE or only SUSPENDED accounts.' })
  status?: UserStatus | null;

  @Field(() => String, { nullable: true, description: 'Only holders of this role.' })
  @IsOptional()
  @IsString()
  @MaxLength(40)
  role?: string | null;
}

@ArgsType()
export class UsersArgs extends PageArgs {
  @Field(() => UserFilter, { nullable: true, description: 'Conditions; leave out for every user.' })
  @IsOptional()
  @ValidateNested()
  filter?: UserFilter | null;
}

@ObjectType({ description: 'One user in a page of users.' })
export class UserEdge {
  @Field({ description: 'Pass it as `after` to continue after this user.' })
  cursor!: string;

  @Field(() => User, { description: 'The user.' })
  node!: User;
}

@ObjectType({ description: 'A page of users, newest first.' })
export class UserConnection {
  @Field(() => [UserEdge], { description: 'The users of this page.' })
  edges!: UserEdge[];

  @Field(() => PageInfo, { description: 'Whether more follow, and where to continue.' })
  pageInfo!: PageInfo;

  @Field(() => Int, { description: 'How many users match the filter in all.' })
  totalCount!: number;
}

@InputType({ description: 'A user and the status to give them.' })
export class SetUserStatusInput {
  @Field(() => ID, { description: "The user's id." })
  @IsString()
  @MaxLength(64)
  userId!: string;

  @Field(() => UserStatus, { description: 'SUSPENDED ends every session at once; ACTIVE lets the user sign in again.' })
  status!: UserStatus;
}
