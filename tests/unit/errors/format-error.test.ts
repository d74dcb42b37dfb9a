import { GraphQLError, GraphQLFormattedError } from 'graphql';
import { AppError, MASKED_MESSAGE, formatClientError, isPublicError } from '../../../src/errors';

const formattedOf = (error: GraphQLError): GraphQLFormattedError => error.toJSON();

/** What graphql-js does with an error thrown in a resolver. */
function thrownInResolver(original: Error): GraphQLError {
  return new GraphQLError(original.message, { path: ['field'], originalError: original });
}

describe('formatClientError', () => {
  it('passes an AppError with its code and public details', () => {
    const error = thrownInResolver(new AppError('RATE_LIMITED', 'Too many attempts.', { details: { retryAfterSeconds: 30 } }));
    expect(formatClientError(formattedOf(error), error)).toEqual({
      message: 'Too many attempts.',
      path: ['field'],
      extensions: { code: 'RATE_LIMITED', retryAfterSeconds: 30 },
    });
  });

  it('masks a database error: no SQL, no stack, one code', () => {
    const sqlError = Object.assign(new Error('relation "users" does not exist'), { query: 'SELECT * FROM users', code: '42P01' });
    const error = thrownInResolver(sqlError);
    const formatted = formatClientError(
      { ...formattedOf(error), extensions: { code: 'INTERNAL_SERVER_ERROR', stacktrace: ['at x'] } },
      error,
    );
    expect(formatted).toEqual({ message: MASKED_MESSAGE, path: ['field'], extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  });

  it('masks a GraphQLError that wraps something else, even with a catalogued code', () => {
    const error = new GraphQLError('boom', { originalError: new Error('boom'), extensions: { code: 'FORBIDDEN' } });
    expect(isPublicError(error)).toBe(false);
  });

  it('masks an uncatalogued code', () => {
    const error = new GraphQLError('weird', { extensions: { code: 'SOMETHING_ELSE' } });
    expect(formatClientError(formattedOf(error), error).extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
  });

  it('passes request-level errors raised by graphql itself, without their stack', () => {
    const error = new GraphQLError('Cannot query field "x" on type "Query".', { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    const formatted = formatClientError(
      { ...formattedOf(error), extensions: { code: 'GRAPHQL_VALIDATION_FAILED', stacktrace: ['at y'] } },
      error,
    );
    expect(formatted).toEqual({ message: 'Cannot query field "x" on type "Query".', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
  });
});

describe('AppError', () => {
  it('keeps its cause out of the client view', () => {
    const error = new AppError('CONFLICT', 'Already exists.', { cause: new Error('duplicate key value violates unique constraint') });
    expect(JSON.stringify(error.toJSON())).not.toContain('duplicate key');
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('sets the HTTP status from the catalogue only when it stops the request', () => {
    expect(new AppError('FORBIDDEN', 'No.', { stopsRequest: true }).extensions).toEqual({ code: 'FORBIDDEN', http: { status: 403 } });
    expect(new AppError('FORBIDDEN', 'No.').extensions).toEqual({ code: 'FORBIDDEN' });
  });
});
