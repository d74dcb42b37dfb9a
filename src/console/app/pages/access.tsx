import { useState } from 'preact/hooks';
import { ActionButton, Columns, ErrorText, Page, PageProps, textOf, useLoad, useSubmit } from '../ui';
import type { Session } from '../session';

type Action = 'READ' | 'CREATE' | 'UPDATE' | 'DELETE';

interface Grant {
  readonly id: string;
  readonly role: string;
  readonly model: string;
  readonly action: Action;
  readonly scope: 'OWN' | 'ALL';
  readonly fields: readonly string[] | null;
  readonly filter: string | null;
}

interface Role {
  readonly name: string;
  readonly description: string | null;
  readonly builtIn: boolean;
  readonly requireMfa: boolean;
}

const PERMISSION_MATRIX = 'query ConsolePermissionMatrix { permissionMatrix { id role model action scope fields filter } }';
const ROLES = 'query ConsoleRoles { roles { name description builtIn requireMfa } }';
const GRANT_PERMISSION = `mutation ConsoleGrantPermission($input: GrantPermissionInput!) {
  grantPermission(input: $input) { id role model action scope fields filter }
}`;
const REVOKE_PERMISSION = 'mutation ConsoleRevokePermission($id: ID!) { revokePermission(id: $id) }';
const CREATE_ROLE = 'mutation ConsoleCreateRole($input: CreateRoleInput!) { createRole(input: $input) { name } }';
const DELETE_ROLE = 'mutation ConsoleDeleteRole($name: String!) { deleteRole(name: $name) }';

const ACTIONS: readonly Action[] = ['READ', 'CREATE', 'UPDATE', 'DELETE'];

/** Grants by model, then role, then action in the order READ, CREATE, UPDATE, DELETE. */
function byModelRoleAction(a: Grant, b: Grant): number {
  return a.model.localeCompare(b.model) || a.role.localeCompare(b.role) || ACTIONS.indexOf(a.action) - ACTIONS.indexOf(b.action);
}

/** The policy as data: every grant by model and role, granting and revoking, and the roles themselves. */
export function Access({ session }: PageProps) {
  const matrix = useLoad(() => session.run<{ permissionMatrix: Grant[] }>(PERMISSION_MATRIX).then((data) => data.permissionMatrix));
  const roles = useLoad(() => session.run<{ roles: Role[] }>(ROLES).then((data) => data.roles));
  const grants = [...(matrix.data ?? [])].sort(byModelRoleAction);
  const models = [...new Set(grants.map((grant) => grant.model))];

  return (
    <Page
      title="Access"
      intro={
        "Who may do what with each model: a role holds grants (an action on a model's rows, OWN or ALL, for some or every field), " +
        'and users hold roles. Every change is in force at the next request on every instance and is recorded in the audit log.'
      }
    >
      <h2>Permissions</h2>
      <GrantForm session={session} roles={(roles.data ?? []).map((role) => role.name)} models={models} onGranted={matrix.reload} />
      <ErrorText error={matrix.error} />
      {models.map((model) => (
        <GrantTable session={session} model={model} grants={grants.filter((grant) => grant.model === model)} onRevoked={matrix.reload} />
      ))}
      <h2>Roles</h2>
      <ErrorText error={roles.error} />
      {roles.data ? (
        <RoleTable
          session={session}
          roles={roles.data}
          onDeleted={() => {
            roles.reload();
            matrix.reload();
          }}
        />
      ) : null}
      <CreateRoleForm session={session} onCreated={roles.reload} />
    </Page>
  );
}

function GrantTable(props: {
  readonly session: Session;
  readonly model: string;
  readonly grants: readonly Grant[];
  readonly onRevoked: () => void;
}) {
  return (
    <table class="grants">
      <caption>{props.model}</caption>
      <Columns names={['Role', 'Action', 'Scope', 'Fields', 'Filter']} actions />
      <tbody>
        {props.grants.map((grant) => (
          <tr>
            <td>
              <code>{grant.role}</code>
            </td>
            <td>{grant.action}</td>
            <td>{grant.scope}</td>
            <td>{grant.fields ? grant.fields.join(', ') : '—'}</td>
            <td>{grant.filter ?? ''}</td>
            <td>
              <ActionButton
                label="Revoke"
                kind="danger"
                confirm={`Revoke ${grant.action} (${grant.scope}) on ${grant.model} from "${grant.role}"? In force at the next request.`}
                run={() => props.session.run(REVOKE_PERMISSION, { id: grant.id })}
                done={props.onRevoked}
              />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function GrantForm(props: {
  readonly session: Session;
  readonly roles: readonly string[];
  readonly models: readonly string[];
  readonly onGranted: () => void;
}) {
  const [granted, setGranted] = useState<Grant | null>(null);
  const submit = useSubmit(async (form) => {
    setGranted(null);
    const text = (name: string) => textOf(form, name);
    const fields = text('fields')
      .split(',')
      .map((field) => field.trim())
      .filter(Boolean);
    const input = {
      role: text('role'),
      model: text('model'),
      action: text('action'),
      scope: text('scope'),
      fields: fields.length > 0 ? fields : null,
      filter: text('filter') || null,
    };
    const { grantPermission } = await props.session.run<{ grantPermission: Grant }>(GRANT_PERMISSION, { input });
    setGranted(grantPermission);
    props.onGranted();
  });
  return (
    <form class="inline grant" aria-label="Grant a permission" onSubmit={submit.onSubmit}>
      <label>
        Role
        <select name="role" required>
          <option value="">Choose a role</option>
          {props.roles.map((role) => (
            <option value={role}>{role}</option>
          ))}
        </select>
      </label>
      <label>
        Model
        <input name="model" required list="grant-models" autocomplete="off" aria-describedby="grant-model-hint" />
      </label>
      {/* The models with grants, to pick from; any other model can be typed (one without grants yet). */}
      <datalist id="grant-models">
        {props.models.map((model) => (
          <option value={model} />
        ))}
      </datalist>
      <label>
        Action
        <select name="action">
          {ACTIONS.map((action) => (
            <option value={action}>{action}</option>
          ))}
        </select>
      </label>
      <label>
        Scope
        <select name="scope">
          <option value="OWN">OWN</option>
          <option value="ALL">ALL</option>
        </select>
      </label>
      <label>
        Fields
        <input name="fields" placeholder="all fields" aria-describedby="grant-fields-hint" />
      </label>
      <label>
        Row filter
        <input name="filter" placeholder="none" aria-describedby="grant-filter-hint" />
      </label>
      <button type="submit" class="primary" disabled={submit.busy}>
        {submit.busy ? 'Grant…' : 'Grant'}
      </button>
      <p class="hint" id="grant-model-hint">
        Model: its GraphQL type name, e.g. Post. The list offers the models that hold grants; type any other one.
      </p>
      <p class="hint" id="grant-fields-hint">
        Fields: comma-separated field names (readable ones for READ, writable ones for CREATE and UPDATE); leave empty for every field, and
        always for DELETE.
      </p>
      <p class="hint" id="grant-filter-hint">
        Row filter: the name of a filter the model defines in code (e.g. published), narrowing the scope; leave empty for none.
      </p>
      <ErrorText error={submit.error} />
      {granted ? (
        <p class="done" role="status">
          Granted {granted.action} ({granted.scope}) on {granted.model} to {granted.role}.
        </p>
      ) : null}
    </form>
  );
}

function RoleTable(props: { readonly session: Session; readonly roles: readonly Role[]; readonly onDeleted: () => void }) {
  return (
    <table class="roles" aria-label="Roles">
      <Columns names={['Name', 'Description', 'Built-in', 'Requires MFA']} actions />
      <tbody>
        {props.roles.map((role) => (
          <tr>
            <td>
              <code>{role.name}</code>
            </td>
            <td>{role.description ?? ''}</td>
            <td>{role.builtIn ? 'yes' : 'no'}</td>
            <td>{role.requireMfa ? 'yes' : 'no'}</td>
            <td>
              {role.builtIn ? null : (
                <ActionButton
                  label="Delete"
                  kind="danger"
                  confirm={`Delete the role "${role.name}"? Its grants go with it, and its members lose it at their next request.`}
                  run={() => props.session.run(DELETE_ROLE, { name: role.name })}
                  done={props.onDeleted}
                />
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function CreateRoleForm(props: { readonly session: Session; readonly onCreated: () => void }) {
  const [created, setCreated] = useState<string | null>(null);
  const submit = useSubmit(async (form, element) => {
    setCreated(null);
    const input = {
      name: textOf(form, 'name'),
      description: textOf(form, 'description') || null,
      requireMfa: form.get('requireMfa') === 'on',
    };
    const { createRole } = await props.session.run<{ createRole: { name: string } }>(CREATE_ROLE, { input });
    setCreated(createRole.name);
    element.reset();
    props.onCreated();
  });
  return (
    <form class="inline create-role" aria-label="Create a role" onSubmit={submit.onSubmit}>
      <label>
        Name
        <input name="name" required maxLength={40} autocomplete="off" aria-describedby="role-name-hint" />
      </label>
      <label>
        Description
        <input name="description" maxLength={200} autocomplete="off" />
      </label>
      <label class="check">
        <input name="requireMfa" type="checkbox" />
        Require MFA
      </label>
      <button type="submit" class="primary" disabled={submit.busy}>
        {submit.busy ? 'Create role…' : 'Create role'}
      </button>
      <p class="hint" id="role-name-hint">
        Name: 2–40 characters, lower-case letters, digits, "-" and "_", starting with a letter. Require MFA: members act with the role only
        on a session confirmed with a second factor.
      </p>
      <ErrorText error={submit.error} />
      {created ? (
        <p class="done" role="status">
          Created the role {created}. Give it grants above and members on the Users page.
        </p>
      ) : null}
    </form>
  );
}
