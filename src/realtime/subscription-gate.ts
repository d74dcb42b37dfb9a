import type { NextFunction, Request, Response } from 'express';
import { Kind, OperationTypeNode, parse } from 'graphql';
import { requestParts } from '../firewall/graphql-limits';
import { sendError } from '../http/http-errors';

/** A document that cannot hold a subscription operation is not parsed here. */
const MAY_SUBSCRIBE = /\bsubscription\b/;

/**
 * Subscriptions run over WebSocket only: over HTTP one is refused with 400 BAD_REQUEST before
 * Apollo sees it (graphql-js would run its root field as a query's, and graphql-js 16's
 * single-root-field validation throws on a directive with a required variable: a 500).
 */
export function subscriptionsOverWebSocketOnly(maxTokens: number) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const { query } = requestParts(req);
    if (typeof query === 'string' && MAY_SUBSCRIBE.test(query) && subscribes(query, maxTokens)) {
      sendError(res, 'BAD_REQUEST', 'Subscriptions run over WebSocket (graphql-transport-ws) at /graphql, not over HTTP.');
      return;
    }
    next();
  };
}

function subscribes(query: string, maxTokens: number): boolean {
  try {
    return parse(query, { noLocation: true, maxTokens }).definitions.some(
      (definition) => definition.kind === Kind.OPERATION_DEFINITION && definition.operation === OperationTypeNode.SUBSCRIPTION,
    );
  } catch {
    // Not GraphQL (or over the token limit): Apollo and the firewall's gates answer it.
    return false;
  }
}
