import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** A role: the built-ins (see policy.ts BUILT_IN_ROLES) or one an admin created. */
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
