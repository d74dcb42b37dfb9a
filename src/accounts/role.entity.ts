import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** Built-in roles; every account holds `user`. The access-control issue adds custom roles. */
export const BUILT_IN_ROLES = ['anonymous', 'user', 'admin'] as const;

@Entity('roles')
export class Role {
  @PrimaryColumn({ type: 'text' })
  name!: string;

  @Column({ type: 'text', nullable: true })
  description!: string | null;

  @Column({ type: 'boolean', default: false })
  builtIn!: boolean;

  /** Members must hold an aal2 session to act with this role. */
  @Column({ type: 'boolean', default: false })
  requireMfa!: boolean;

  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;
}
