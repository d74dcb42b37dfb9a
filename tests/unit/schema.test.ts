import fs from 'node:fs';
import path from 'node:path';
import { isEnumType, isInputObjectType, isInterfaceType, isObjectType, isSpecifiedScalarType, isUnionType } from 'graphql';
import { FEATURES } from '../../src/features';
import { PROJECT_ROOT } from '../../src/project';
import { buildGraphQLSchema, printSDL } from '../../src/schema';

describe('schema/schema.graphql', () => {
  it('is what the code generates (run `npx bastion schema emit` after an API change)', async () => {
    const committed = fs.readFileSync(path.join(PROJECT_ROOT, 'schema', 'schema.graphql'), 'utf8');
    expect(committed).toBe(printSDL(await buildGraphQLSchema(FEATURES)));
  });

  it('documents every public type and field', async () => {
    const schema = await buildGraphQLSchema(FEATURES);
    const undocumented: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__') || isSpecifiedScalarType(type)) continue;
      if (!type.description?.trim()) undocumented.push(type.name);
      if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
        for (const field of Object.values(type.getFields())) {
          if (!field.description?.trim()) undocumented.push(`${type.name}.${field.name}`);
        }
      }
      if (isEnumType(type)) {
        for (const value of type.getValues()) if (!value.description?.trim()) undocumented.push(`${type.name}.${value.name}`);
      }
      if (isUnionType(type) && !type.description) undocumented.push(type.name);
    }
    expect(undocumented).toEqual([]);
  });
});
