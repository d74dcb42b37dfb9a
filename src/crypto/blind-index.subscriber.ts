import { EntitySubscriberInterface, EventSubscriber, InsertEvent, ObjectLiteral, UpdateEvent } from 'typeorm';
import { activeKeyring } from './active-keyring';
import { computeBlindIndex } from './blind-index';
import { blindIndexedProperties } from './encrypted-column';

/**
 * Keeps every `<property>Index` column in step with its encrypted property, on `save()` and on
 * query-builder inserts and updates, so application code can never forget to update it.
 */
@EventSubscriber()
export class BlindIndexSubscriber implements EntitySubscriberInterface {
  beforeInsert(event: InsertEvent<ObjectLiteral>): void {
    fillIndexes(event.metadata.target, event.entity);
  }

  beforeUpdate(event: UpdateEvent<ObjectLiteral>): void {
    fillIndexes(event.metadata.target, event.entity);
  }
}

function fillIndexes(target: string | Function, entity: ObjectLiteral | undefined): void {
  if (!entity || typeof target !== 'function') return;
  for (const { property, indexProperty, transformer, normalize } of blindIndexedProperties(target)) {
    // An encrypted column holds text (or a number or boolean written as text).
    const value = entity[property] as string | number | boolean | null | undefined;
    if (value === undefined) continue;
    entity[indexProperty] = value === null ? null : computeBlindIndex(activeKeyring(), transformer.domain, String(value), normalize);
  }
}
