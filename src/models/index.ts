import type { ModelHandle } from '../data/define-model';
import { commentModel } from './comment.model';
import { postModel } from './post.model';
import { profileModel } from './profile.model';

/**
 * The app's models: one file each in this folder, listed here (explicitly, like the entities,
 * so tests and the compiled server load the same set). Each gets a GraphQL CRUD API with its
 * policy; see README "Add a model in three steps".
 */
export const MODELS: readonly ModelHandle[] = [profileModel, postModel, commentModel];

/** Their entities, for the data source and migrations. */
export const MODEL_ENTITIES: Function[] = MODELS.map((model) => model.entity);
