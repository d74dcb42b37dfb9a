import type { ModelHandle } from '../data/define-model';
import { Comment, commentModel } from './comment.model';
import { Post, postModel } from './post.model';
import { Profile, profileModel } from './profile.model';

/**
 * The app's models: one file each in this folder, listed here (explicitly, like the entities,
 * so tests and the compiled server load the same set). Each gets a GraphQL CRUD API with its
 * policy; see README "Add a model in three steps".
 */
export const MODELS: readonly ModelHandle[] = [profileModel, postModel, commentModel];

export const MODEL_ENTITIES: Function[] = [Profile, Post, Comment];
