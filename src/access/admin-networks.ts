import { PrefixTable, parseCidr } from '../net/ip';

/** ADMIN_ALLOWED_CIDRS: the networks the admin role may be used from; none listed means anywhere. */
export class AdminNetworks {
  private readonly table: PrefixTable<true> | null;

  constructor(cidrs: readonly string[]) {
    const networks = cidrs.flatMap((cidr) => parseCidr(cidr) ?? []);
    this.table = networks.length > 0 ? new PrefixTable(networks.map((network) => [network, true] as const)) : null;
  }

  /** May the admin role be used from this address? */
  allows(address: string | null): boolean {
    if (!this.table) return true;
    return address !== null && this.table.lookup(address) === true;
  }
}
