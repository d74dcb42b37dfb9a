import type { Clock } from '../clock';
import { BASTION_VERSION } from '../project';
import { ServerInfo } from './server-info.type';

export class SystemService {
  constructor(private readonly clock: Clock) {}

  serverInfo(): ServerInfo {
    return Object.assign(new ServerInfo(), { name: 'Bastion', version: BASTION_VERSION, serverTime: this.clock.now() });
  }
}
