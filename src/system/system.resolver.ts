import { Query, Resolver } from 'type-graphql';
import { ServerInfo } from './server-info.type';
import { SystemService } from './system.service';

@Resolver()
export class SystemResolver {
  constructor(private readonly system: SystemService) {}

  @Query(() => ServerInfo, { description: 'Name, version and clock of this server. Public.' })
  serverInfo(): ServerInfo {
    return this.system.serverInfo();
  }
}
