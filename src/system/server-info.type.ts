import { Field, ObjectType } from 'type-graphql';

@ObjectType({ description: 'Facts about this Bastion server, for clients checking compatibility and clock skew.' })
export class ServerInfo {
  @Field({ description: 'Product name: always "Bastion".' })
  name!: string;

  @Field({ description: 'Server version (semantic versioning).' })
  version!: string;

  @Field({ description: 'The server clock now, in UTC. Compare with the device clock to detect skew (TOTP codes depend on it).' })
  serverTime!: Date;
}
