import { Length, MaxLength } from 'class-validator';
import { Field, ID, ObjectType } from 'type-graphql';
import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { defineModel } from '../data/define-model';
import { Comment } from './comment.model';
import { Profile } from './profile.model';

@ObjectType({ description: 'A post. Anyone reads published posts; authors read their drafts; admins everything.' })
@Entity('posts')
@Index(['published', 'createdAt', 'id'])
export class Post {
  @Field(() => ID, { description: 'Stable identifier.' })
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Field(() => ID, { nullable: true, description: 'The author (User.id); set from the signed-in user.' })
  @Index()
  @Column({ type: 'uuid' })
  authorId!: string;

  @Field({ nullable: true, description: 'Title, 1–200 characters.' })
  @Length(1, 200)
  @Column({ type: 'text' })
  title!: string;

  @Field({ nullable: true, description: 'Body text, up to 10,000 characters.' })
  @MaxLength(10_000)
  @Column({ type: 'text', default: '' })
  body!: string;

  @Field({ nullable: true, description: 'Visible to everyone when true; a draft otherwise.' })
  @Column({ type: 'boolean', default: false })
  published!: boolean;

  @Field({ nullable: true, description: 'When it was created.' })
  @CreateDateColumn({ type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Field({ nullable: true, description: 'When it last changed.' })
  @UpdateDateColumn({ type: 'timestamptz', precision: 3 })
  updatedAt!: Date;
}

export const postModel = defineModel(Post, {
  owner: 'authorId',
  writable: ['title', 'body', 'published'],
  filterable: ['authorId', 'title', 'published', 'createdAt'],
  sortable: ['createdAt', 'updatedAt', 'title'],
  filters: { published: { published: true } },
  subscriptions: true,
  files: {
    attachments: {
      description: 'Photos and documents attached to the post (up to 10): images re-encoded without their metadata, PDFs, audio.',
      multiple: true,
      maxFiles: 10,
      maxBytes: 25 * 1024 * 1024,
      types: ['image/jpeg', 'image/png', 'image/webp', 'application/pdf', 'audio/mp4', 'audio/mpeg'],
      variants: ['THUMB_256', 'MEDIUM_1024'],
    },
  },
  relations: {
    author: {
      kind: 'one',
      model: () => Profile,
      by: 'authorId',
      to: 'userId',
      description: "The author's profile (null when they have none).",
    },
    comments: {
      kind: 'many',
      model: () => Comment,
      by: 'postId',
      description: 'Comments you may read, oldest first.',
      count: { name: 'commentCount', description: 'How many comments you may read.' },
    },
  },
  defaults: [
    { role: 'anonymous', action: 'read', scope: 'all', filter: 'published' },
    { role: 'user', action: 'read', scope: 'own' },
    { role: 'user', action: 'create', scope: 'own' },
    { role: 'user', action: 'update', scope: 'own' },
    { role: 'user', action: 'delete', scope: 'own' },
    { role: 'admin', action: 'read', scope: 'all' },
    { role: 'admin', action: 'update', scope: 'all' },
    { role: 'admin', action: 'delete', scope: 'all' },
  ],
});
