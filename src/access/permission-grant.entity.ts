import { Check, Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import type { Action, Scope } from './decision';
import { Role } from '../accounts/role.entity';

/** One permission: `role` may do `action` on `model`'s rows in `scope`, for `fields` (null: all). */
@Entity('permission_grants')
@Index(['model', 'action'])
@Check('permission_grants_action', `"action" IN ('read', 'create', 'update', 'delete')`)
@Check('permission_grants_scope', `"scope" IN ('own', 'all')`)
export class PermissionGrantRow {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  roleName!: string;

  @ManyToOne(() => Role, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'role_name' })
  role?: Role;

  /** The GraphQL type name of the model, e.g. "Post". */
  @Column({ type: 'text' })
  model!: string;

  @Column({ type: 'text' })
  action!: Action;

  @Column({ type: 'text' })
  scope!: Scope;

  @Column({ type: 'text', array: true, nullable: true })
  fields!: string[] | null;

  @Column({ type: 'text', nullable: true })
  filter!: string | null;

  /** The admin who added it; null for a model's code defaults. */
  @Column({ type: 'uuid', nullable: true })
  createdBy!: string | null;

  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;
}

/**
 * A model whose code defaults have been written into `permission_grants` once. After that the
 * table is the policy: a default an admin revoked stays revoked across restarts.
 */
@Entity('policy_seeds')
export class PolicySeed {
  @PrimaryColumn({ type: 'text' })
  model!: string;

  @CreateDateColumn({ type: 'timestamptz' })
  seededAt!: Date;
}
