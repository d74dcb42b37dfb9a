import { ALL_FIELDS, ModelAccessSpec, fieldMaskOf } from '../../../src/access/model-access';
import { Policy, requiresMfa } from '../../../src/access/policy';
import { AccessView } from '../../../src/access/access-view';
import { Grant, RoleDefinition } from '../../../src/access/decision';
import { ANONYMOUS, Viewer } from '../../../src/accounts/viewer';
import { AppError } from '../../../src/errors';

const role = (name: string, requireMfa = false): RoleDefinition => ({
  name,
  description: null,
  builtIn: ['anonymous', 'user', 'admin'].includes(name),
  requireMfa,
});
const ROLES = [role('anonymous'), role('user'), role('admin', true), role('editor'), role('auditor', true)];
let grantIds = 0;
const grant = (fields: Omit<Grant, 'id' | 'fields' | 'filter'> & Partial<Pick<Grant, 'fields' | 'filter'>>): Grant => ({
  id: `g${(grantIds += 1)}`,
  fields: null,
  filter: null,
  ...fields,
});

const NOTE: ModelAccessSpec = {
  name: 'Note',
  ownerField: 'ownerId',
  readableFields: ['id', 'ownerId', 'title', 'body', 'published'],
  writableFields: ['title', 'body', 'published'],
  filters: { published: { published: true } },
  defaults: [],
};

const viewer = (userId: string, roles: string[] = ['user'], aal: 1 | 2 = 1): Viewer => ({
  userId,
  sessionId: `s-${userId}`,
  roles,
  aal,
  amr: ['pwd'],
});

describe('requiresMfa (BASTION_MFA_REQUIRED_FOR)', () => {
  it('never for anonymous; admin from "admin" up; every role for "all"; otherwise the role\'s own flag', () => {
    expect(requiresMfa({ name: 'anonymous', requireMfa: true }, 'all')).toBe(false);
    expect(requiresMfa({ name: 'admin', requireMfa: false }, 'none')).toBe(false);
    expect(requiresMfa({ name: 'admin', requireMfa: false }, 'admin')).toBe(true);
    expect(requiresMfa({ name: 'user', requireMfa: false }, 'admin')).toBe(false);
    expect(requiresMfa({ name: 'user', requireMfa: false }, 'all')).toBe(true);
    expect(requiresMfa({ name: 'editor', requireMfa: true }, 'none')).toBe(true);
  });
});

describe('AccessView', () => {
  const policy = new Policy(ROLES, [
    grant({ role: 'anonymous', model: 'Note', action: 'read', scope: 'all', filter: 'published', fields: ['title'] }),
    grant({ role: 'user', model: 'Note', action: 'read', scope: 'own' }),
    grant({ role: 'auditor', model: 'Note', action: 'read', scope: 'all' }),
    grant({ role: 'auditor', model: 'Note', action: 'delete', scope: 'all' }),
    grant({ role: 'editor', model: 'Note', action: 'update', scope: 'all', fields: ['title'] }),
    grant({ role: 'user', model: 'Note', action: 'create', scope: 'own' }),
  ]);

  it('every viewer holds anonymous; signed-in viewers hold user; roles that require MFA are held back on aal1', () => {
    const aal1 = new AccessView(policy, viewer('u1', ['user', 'admin', 'auditor']));
    expect([...aal1.rolesInForce].sort()).toEqual(['anonymous', 'user']);
    expect([...aal1.rolesHeldBack].sort()).toEqual(['admin', 'auditor']);
    expect(aal1.checkRole('admin')).toBeInstanceOf(AppError);
    expect((aal1.checkRole('admin') as AppError).code).toBe('MFA_REQUIRED');
    const aal2 = new AccessView(policy, viewer('u1', ['user', 'admin'], 2));
    expect(aal2.checkRole('admin')).toBe(true);
    expect(new AccessView(policy, ANONYMOUS).checkRole('admin')).toBe(false);
  });

  it('ignores roles the policy no longer has (deleted since the session cache loaded them)', () => {
    expect([...new AccessView(policy, viewer('u1', ['user', 'gone'])).rolesInForce]).not.toContain('gone');
  });

  it('decides per model and action: allowed with clauses, MFA_REQUIRED only where a held-back role alone would allow', () => {
    const auditorAal1 = new AccessView(policy, viewer('u1', ['user', 'auditor']));
    expect(auditorAal1.check('Note', 'read')).toBe(true); // own rows, through "user"
    expect((auditorAal1.check('Note', 'delete') as AppError).code).toBe('MFA_REQUIRED');
    expect(new AccessView(policy, viewer('u2')).check('Note', 'delete')).toBe(false);
    expect(new AccessView(policy, viewer('u1', ['user', 'auditor'], 2)).decide('Note', 'read').unrestricted).toBe(true);
    expect(auditorAal1.decide('Note', 'read')).toBe(auditorAal1.decide('Note', 'read')); // once per request
  });

  it('gives anonymous viewers no OWN clauses (they own nothing)', () => {
    const decision = new AccessView(policy, ANONYMOUS).decide('Note', 'read');
    expect(decision.clauses).toEqual([{ own: false, filter: 'published', fields: new Set(['title']) }]);
  });
});

describe('ModelScope', () => {
  const policy = new Policy(ROLES, [
    grant({ role: 'anonymous', model: 'Note', action: 'read', scope: 'all', filter: 'published', fields: ['title'] }),
    grant({ role: 'user', model: 'Note', action: 'read', scope: 'own' }),
    grant({ role: 'user', model: 'Note', action: 'update', scope: 'own', fields: ['title', 'body'] }),
    grant({ role: 'editor', model: 'Note', action: 'update', scope: 'all', fields: ['title'], filter: 'published' }),
  ]);
  const scopeFor = (who: Viewer, action: 'read' | 'update') => new AccessView(policy, who).scope(NOTE, action);

  it('scopes rows in SQL terms: one where object per clause, owner and filter combined with the base', () => {
    expect(scopeFor(viewer('u1'), 'read').where({ id: 'n1' })).toEqual([
      { id: 'n1', published: true },
      { id: 'n1', ownerId: 'u1' },
    ]);
    expect(scopeFor(ANONYMOUS, 'read').where()).toEqual([{ published: true }]);
    expect(new AccessView(new Policy(ROLES, []), viewer('u1')).scope(NOTE, 'read').where()).toBeNull();
  });

  it('matches nothing for a clause naming a filter the model lacks (fail closed)', () => {
    const stale = new Policy(ROLES, [grant({ role: 'user', model: 'Note', action: 'read', scope: 'all', filter: 'removed-filter' })]);
    const scope = new AccessView(stale, viewer('u1')).scope(NOTE, 'read');
    expect(scope.where()).toBeNull();
    expect(fieldMaskOf(scope.expose({ id: 'n1', ownerId: 'u1', published: true }))).toEqual(new Set());
    const inherited = new Policy(ROLES, [grant({ role: 'user', model: 'Note', action: 'read', scope: 'all', filter: 'constructor' })]);
    const inheritedScope = new AccessView(inherited, viewer('u1')).scope(NOTE, 'read');
    expect(inheritedScope.where()).toBeNull();
    expect(fieldMaskOf(inheritedScope.expose({ id: 'n1', ownerId: 'u2' }))).toEqual(new Set());
  });

  it('masks each row by the clauses it falls in: id always, the union of their fields', () => {
    const scope = scopeFor(viewer('u1'), 'read');
    expect(fieldMaskOf(scope.expose({ id: 'n1', ownerId: 'u1', published: false }))).toBe(ALL_FIELDS);
    expect(fieldMaskOf(scope.expose({ id: 'n2', ownerId: 'u2', published: true }))).toEqual(new Set(['id', 'title']));
    expect(fieldMaskOf(scope.expose({ id: 'n3', ownerId: 'u2', published: false }))).toEqual(new Set());
    expect(fieldMaskOf({ id: 'n4' })).toBeUndefined();
  });

  it('refuses input fields no grant names (mass assignment), and unknown ones outright', () => {
    const scope = scopeFor(viewer('u1'), 'update');
    expect(scope.writableClauses(['title', 'body'])).toHaveLength(1);
    expect(() => scope.writableClauses(['published'])).toThrow(
      expect.objectContaining({ code: 'FORBIDDEN', extensions: expect.objectContaining({ field: 'published' }) }),
    );
    expect(() => scope.writableClauses(['ownerId'])).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT' }));
  });

  it('checks the row as written against the clauses (RLS WITH CHECK): an editor may retitle published notes only', () => {
    const scope = scopeFor(viewer('u1', ['user', 'editor']), 'update');
    const clauses = scope.writableClauses(['title']);
    expect(scope.where({ id: 'n1' }, clauses)).toEqual([
      { id: 'n1', ownerId: 'u1' },
      { id: 'n1', published: true },
    ]);
    expect(scope.admits({ ownerId: 'u2', published: true }, clauses)).toBe(true);
    expect(scope.admits({ ownerId: 'u2', published: false }, clauses)).toBe(false);
    expect(scope.admits({ ownerId: 'u1', published: false }, clauses)).toBe(true);
  });
});
