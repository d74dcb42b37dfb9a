import { Length } from 'class-validator';
import { Field, ID, ObjectType } from 'type-graphql';
import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { defineModel } from '../data/define-model';
import { Post } from './post.model';
import { Profile } from './profile.model';

@ObjectType({ description: 'A comment on a post. Signed-in users read them; authors edit their own.' })
@Entity('comments')
@Index(['postId', 'createdAt', 'id'])
export class Comment {
  @Field(() => ID, { description: 'Stable identifier.' })
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Field(() => ID, { nullable: true, description: 'The post it is on.' })
  @Column({ type: 'uuid' })
  postId!: string;

  @Field(() => ID, { nullable: true, description: 'The author (User.id); set from the signed-in user.' })
  @Index()
  @Column({ type: 'uuid' })
  authorId!: string;

  @Field({ nullable: true, description: 'Text, 1–2,000 characters.' })
  @Length(1, 2000)
  @Column({ type: 'text' })
  body!: string;

  @Field({ nullable: true, description: 'When it was created.' })
  @CreateDateColumn({ type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Field({ nullable: true, description: 'When it last changed.' })
  @UpdateDateColumn({ type: 'timestamptz', precision: 3 })
  updatedAt!: Date;
}

export const commentModel = defineModel(Comment, {
  owner: 'authorId',
  writable: ['postId', 'body'],
  filterable: ['postId', 'authorId', 'createdAt'],
  sortable: ['createdAt'],
  subscriptions: true,
  relations: {
    post: { kind: 'one', model: () => Post, by: 'postId', description: 'The post it is on (null if you may not read it).' },
    author: { kind: 'one', model: () => Profile, by: 'authorId', to: 'userId', description: "The author's profile." },
  },
  defaults: [
    { role: 'user', action: 'read', scope: 'all' },
    { role: 'user', action: 'create', scope: 'own' },
    { role: 'user', action: 'update', scope: 'own', fields: ['body'] },
    { role: 'user', action: 'delete', scope: 'own' },
    { role: 'admin', action: 'delete', scope: 'all' },
  ],
});
