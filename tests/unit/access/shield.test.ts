import { rulesOf } from '../../../src/schema';
import fs from 'node:fs';
import path from 'node:path';
import { GraphQLObjectType, GraphQLSchema, buildSchema, defaultFieldResolver, execute, getNamedType, isObjectType, parse } from 'graphql';
import { chain, rule } from 'graphql-shield';
import { unruledFields } from '../../../src/shield/coverage';
import { isRowRule } from '../../../src/access/model-rules';
import { Policy } from '../../../src/access/policy';
import { AccessView } from '../../../src/access/access-view';
import { isPublic, syncRule } from '../../../src/shield/rules';
import { isAuthenticated } from '../../../src/accounts/viewer';
import { AppError } from '../../../src/errors';
import { RuleTree, mergeRuleTrees, protectSchema } from '../../../src/shield/shield';
import { FrozenClock } from '../../../src/clock';
import { Context } from '../../../src/context';
import { ANONYMOUS, Viewer } from '../../../src/accounts/viewer';
import { FEATURES } from '../../../src/features';
import { RequestLoaders } from '../../../src/graphql/request-loaders';
import { createLogger } from '../../../src/logging';
import { buildGraphQLSchema } from '../../../src/schema';
import { LogCollector } from '../../support/log-collector';
import { memoFeature } from '../../support/memo-model';

const BUILT_INS = ['anonymous', 'user', 'admin'].map((name) => ({ name, description: null, builtIn: true, requireMfa: false }));

function contextFor(viewer: Viewer, logs = new LogCollector()): Context {
  return {
    requestId: 'r',
    logger: createLogger({ level: 'debug', pretty: false, destination: logs }),
    viewer,
    access: new AccessView(new Policy(BUILT_INS, []), viewer),
    clock: new FrozenClock(),
    loaders: new RequestLoaders(),
    ipAddress: null,
    userAgent: null,
    signedInDuringRequest: new Set(),
    accessTokenExpired: false,
  };
}

const SIGNED_IN: Viewer = { userId: 'u1', sessionId: 's1', roles: ['user'], aal: 1, amr: ['pwd'] };

const toySchema = (): GraphQLSchema => {
  const schema = buildSchema('type Query { open: String, unruled: String, guarded: String, broken: String }');
  const fields = schema.getQueryType()!.getFields();
  fields.open.resolve = () => 'open';
  fields.unruled.resolve = () => 'secret';
  fields.guarded.resolve = () => 'guarded';
  fields.broken.resolve = () => 'broken';
  return schema;
};

const run = (schema: GraphQLSchema, query: string, context: Context) => execute({ schema, document: parse(query), contextValue: context });

describe('graphql-shield 7.6.5 with the Node ≥ 23 patch', () => {
  it('no longer imports util.isUndefined in either build', () => {
    const root = path.dirname(require.resolve('graphql-shield/package.json'));
    for (const build of ['cjs', 'esm']) {
      expect(fs.readFileSync(path.join(root, build, 'rules.js'), 'utf8')).not.toMatch(/require\("util"\)|from 'util'|util_1\.isUndefined/);
    }
  });

  it('evaluates chain() (the patched code path) to the end', async () => {
    const isTrue = rule('isTrueForTest')(() => true);
    const isFalse = rule('isFalseForTest')(() => false);
    const schema = protectSchema(toySchema(), { Query: { open: chain(isTrue, isTrue), guarded: chain(isTrue, isFalse) } });
    const result = await run(schema, '{ open guarded }', contextFor(SIGNED_IN));
    expect(result.data).toEqual({ open: 'open', guarded: null });
    expect(result.errors?.map((error) => error.extensions.code)).toEqual(['FORBIDDEN']);
  });
});

describe('synchronous rules (the generator patch)', () => {
  const sync = (name: string, decide: () => unknown) => syncRule(name, decide as never);

  it('runs a syncRule without a promise: a schema whose resolvers are synchronous stays synchronous', () => {
    const schema = protectSchema(toySchema(), { Query: { open: isPublic, guarded: isAuthenticated, unruled: isPublic, broken: isPublic } });
    const result = run(schema, '{ open guarded }', contextFor(SIGNED_IN));
    expect(result).not.toBeInstanceOf(Promise);
    expect(result).toEqual({ data: { open: 'open', guarded: 'guarded' } });
  });

  it("denies when a syncRule throws or answers anything but true; an AppError it returns is the field's error and is logged", async () => {
    const logs = new LogCollector();
    const schema = protectSchema(toySchema(), {
      Query: {
        open: sync('throwsSync', () => {
          throw new Error('boom');
        }),
        unruled: sync('answersOne', () => 1),
        guarded: sync('answersPromise', () => Promise.resolve(true)),
        broken: sync('answersMfa', () => new AppError('MFA_REQUIRED', 'confirm first')),
      },
    });
    const result = await run(schema, '{ open unruled guarded broken }', contextFor(SIGNED_IN, logs));
    expect(result.data).toEqual({ open: null, unruled: null, guarded: null, broken: null });
    expect(result.errors?.map((error) => [error.path?.[0], error.extensions.code])).toEqual([
      ['open', 'FORBIDDEN'],
      ['unruled', 'FORBIDDEN'],
      ['guarded', 'FORBIDDEN'],
      ['broken', 'MFA_REQUIRED'],
    ]);
    expect(
      logs.lines
        .filter((line) => line.msg === 'access denied')
        .map((line) => line.field)
        .sort(),
    ).toEqual(['Query.broken', 'Query.guarded', 'Query.open', 'Query.unruled']);
  });
});

describe('deny by default', () => {
  const rules: RuleTree = {
    Query: {
      open: isPublic,
      broken: rule('throwsForTest')(() => {
        throw new Error('redis down');
      }),
    },
  };

  it('refuses a field without a rule: UNAUTHENTICATED for anonymous viewers', async () => {
    const result = await run(protectSchema(toySchema(), rules), '{ open unruled }', contextFor(ANONYMOUS));
    expect(result.data).toEqual({ open: 'open', unruled: null });
    expect(result.errors?.[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('refuses a field without a rule: FORBIDDEN for signed-in viewers, and logs the denial', async () => {
    const logs = new LogCollector();
    const result = await run(protectSchema(toySchema(), rules), '{ unruled }', contextFor(SIGNED_IN, logs));
    expect(result.errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect(logs.find((line) => line.msg === 'access denied')).toMatchObject({ field: 'Query.unruled', userId: 'u1' });
  });

  it('fails closed when a rule throws', async () => {
    const result = await run(protectSchema(toySchema(), rules), '{ broken }', contextFor(SIGNED_IN));
    expect(result.data).toEqual({ broken: null });
    expect(result.errors).toHaveLength(1);
  });

  it('refuses two features ruling the same field', () => {
    expect(() => mergeRuleTrees([{ Query: { open: isPublic } }, { Query: { open: isPublic } }])).toThrow('Two features rule Query.open');
  });
});

describe('schema coverage (PERM-2)', () => {
  // The public features, plus a test model whose rules are compiled from its spec (as the data API's are).
  const features = [...FEATURES, memoFeature];

  it('has an explicit rule for every field of every object type', async () => {
    const schema = await buildGraphQLSchema(features);
    expect(unruledFields(schema, rulesOf(features))).toEqual([]);
  });

  it('rules no field that the schema lacks', async () => {
    const schema = await buildGraphQLSchema(features);
    const rules = rulesOf(features);
    const stale = Object.entries(rules).flatMap(([typeName, fields]) =>
      Object.keys(fields)
        .filter((field) => {
          const type = schema.getType(typeName);
          return field !== '*' && !(isObjectType(type) && type.getFields()[field]);
        })
        .map((field) => `${typeName}.${field}`),
    );
    expect(stale).toEqual([]);
  });
});

describe("projected row fields (decided by the data API once per mask, served without shield's wrapper)", () => {
  const rules = rulesOf(FEATURES);
  const projectedTypes = new Set(
    Object.entries(rules)
      .filter(([, fields]) => Object.values(fields).some((rule) => isRowRule(rule) && rule.row.projection !== null))
      .map(([typeName]) => typeName),
  );

  it("are the sample models' fields, and only they lose the wrapper", async () => {
    expect([...projectedTypes].sort()).toEqual(['Comment', 'Post', 'Profile']);
    const schema = protectSchema(await buildGraphQLSchema(FEATURES), rules);
    for (const typeName of projectedTypes) {
      const type = schema.getType(typeName) as GraphQLObjectType;
      for (const [fieldName, rule] of Object.entries(rules[typeName])) {
        const projection = isRowRule(rule) ? rule.row.projection : null;
        const resolve = type.getFields()[fieldName].resolve;
        // A column: no resolver at all; a relation or count: graphql's default resolver; a to-many list: still shield's wrapper.
        expect({
          field: `${typeName}.${fieldName}`,
          resolver: resolve === undefined ? 'none' : resolve === defaultFieldResolver ? 'default' : 'wrapped',
        }).toEqual({
          field: `${typeName}.${fieldName}`,
          resolver: projection === 'value' ? 'none' : projection === 'loaded' ? 'default' : 'wrapped',
        });
      }
    }
  });

  it('reach the client only through fields the data API declares (so every such object was projected)', async () => {
    const schema = await buildGraphQLSchema(FEATURES);
    const dataFeature = FEATURES.find((feature) => feature.name === 'data')!;
    const declared = new Set(
      Object.entries(dataFeature.rules ?? {}).flatMap(([typeName, fields]) => Object.keys(fields).map((field) => `${typeName}.${field}`)),
    );
    const producing = new Set([...projectedTypes, ...[...projectedTypes].flatMap((name) => [`${name}Connection`, `${name}Edge`])]);
    const elsewhere: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__')) continue;
      for (const field of Object.values(type.getFields())) {
        if (producing.has(getNamedType(field.type).name) && !declared.has(`${type.name}.${field.name}`))
          elsewhere.push(`${type.name}.${field.name}`);
      }
    }
    expect(elsewhere).toEqual([]);
  });
});
