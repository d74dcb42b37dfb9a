import {
  DocumentNode,
  FragmentDefinitionNode,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  SelectionSetNode,
  getDirectiveValues,
  ExecutionArgs,
  GraphQLError,
  OperationTypeNode,
  getOperationAST,
  getVariableValues,
  parse,
  specifiedRules,
  validate,
} from 'graphql';
import type { SubscribePayload } from 'graphql-ws';
import type { Context } from '../context';
import { AppError } from '../errors';
import type { UpgradeParts } from '../feature';
import { variablesTooDeep } from '../firewall/graphql-limits';

/** Documents kept parsed: an app subscribes with the same few. */
const MAX_KNOWN_DOCUMENTS = 500;

/**
 * A subscribe message, checked as an HTTP request is before it runs: the token limit, graphql-js's
 * validation with every feature's rules (depth, aliases, directives), one subscription operation
 * (queries and mutations go over HTTP), the variables' nesting, the features' operation checks
 * (cost, allowlist) and the variables' types. Each refusal carries a code from the catalogue.
 */
export class SubscribeRequests {
  private readonly knownDocuments = new Map<string, DocumentNode>();

  constructor(
    private readonly parts: Pick<UpgradeParts, 'schema' | 'validationRules' | 'operationChecks'>,
    private readonly maxTokens: number,
  ) {}

  /** The execution of `payload` with `context`, or why it is refused. */
  prepare(payload: SubscribePayload, context: Context): ExecutionArgs | readonly GraphQLError[] {
    const document = this.parsed(payload.query);
    if (document instanceof GraphQLError) return [document];
    let errors: readonly GraphQLError[];
    try {
      errors = validate(this.parts.schema, document, [...specifiedRules, ...this.parts.validationRules], { maxErrors: 1 });
    } catch (error) {
      // graphql-js 16's single-root-field rule evaluates @include/@skip without variables, and throws on a required one.
      if (!(error instanceof GraphQLError)) throw error;
      errors = [error];
    }
    if (errors.length > 0) return errors.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
    const operation = getOperationAST(document, payload.operationName);
    if (!operation) return [new AppError('OPERATION_RESOLUTION_FAILURE', 'operationName does not name an operation in the document.')];
    if (operation.operation !== OperationTypeNode.SUBSCRIPTION)
      return [new AppError('BAD_REQUEST', 'Only subscriptions run over WebSocket: send queries and mutations over HTTP POST /graphql.')];
    if (variablesTooDeep(payload.variables)) return [new AppError('BAD_USER_INPUT', 'The variables are nested too deeply.')];
    // Only the declared ones: an undeclared variable changes nothing but would make every answer's sharing key unique.
    const declared = new Set((operation.variableDefinitions ?? []).map((definition) => definition.variable.name.value));
    const variables = Object.fromEntries(Object.entries(payload.variables ?? {}).filter(([name]) => declared.has(name)));
    try {
      for (const check of this.parts.operationChecks)
        check({ source: payload.query, document, operation, operationName: payload.operationName, variables }, context);
    } catch (error) {
      return [toGraphQLError(error)];
    }
    // Coerced here, as Apollo does over HTTP (BAD_USER_INPUT): graphql-js's own errors carry no code and would be masked.
    const coerced = getVariableValues(this.parts.schema, operation.variableDefinitions ?? [], variables, { maxErrors: 50 });
    if (coerced.errors) return coerced.errors.map((error) => withCode(error, 'BAD_USER_INPUT'));
    // graphql-js 16 fails with a TypeError on a subscription whose only field @skip/@include leaves out.
    if (!selectsAField(operation.selectionSet, document, coerced.coerced))
      return [new AppError('BAD_USER_INPUT', 'This subscription selects no field once @skip and @include apply: it must select one.')];
    return { schema: this.parts.schema, document, operationName: payload.operationName, variableValues: variables, contextValue: context };
  }

  private parsed(query: string): DocumentNode | GraphQLError {
    const known = this.knownDocuments.get(query);
    if (known) return known;
    let document: DocumentNode;
    try {
      document = parse(query, { noLocation: true, maxTokens: this.maxTokens });
    } catch (error) {
      return withCode(error as GraphQLError, 'GRAPHQL_PARSE_FAILED');
    }
    if (this.knownDocuments.size >= MAX_KNOWN_DOCUMENTS) this.knownDocuments.clear();
    this.knownDocuments.set(query, document);
    return document;
  }
}

function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, { extensions: { ...error.extensions, code } });
}

function toGraphQLError(error: unknown): GraphQLError {
  return error instanceof GraphQLError ? error : new GraphQLError('Unexpected error', { originalError: error as Error });
}

/** Does a root selection keep at least one field, with these variables (fragments followed)? */
function selectsAField(selectionSet: SelectionSetNode, document: DocumentNode, variables: Record<string, unknown>): boolean {
  return selectionSet.selections.some((selection) => {
    const skipped = getDirectiveValues(GraphQLSkipDirective, selection, variables)?.if === true;
    const included = getDirectiveValues(GraphQLIncludeDirective, selection, variables)?.if !== false;
    if (skipped || !included) return false;
    if (selection.kind === Kind.FIELD) return true;
    if (selection.kind === Kind.INLINE_FRAGMENT) return selectsAField(selection.selectionSet, document, variables);
    const fragment = document.definitions.find(
      (definition): definition is FragmentDefinitionNode =>
        definition.kind === Kind.FRAGMENT_DEFINITION && definition.name.value === selection.name.value,
    );
    return fragment !== undefined && selectsAField(fragment.selectionSet, document, variables);
  });
}
