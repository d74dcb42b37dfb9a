export { AppError, PublicDetails, isAppError, serviceUnavailable } from './app-error';
export { ERROR_CODES, ErrorCode, isErrorCode } from './error-codes';
export { MASKED_MESSAGE, formatClientError, isPublicError } from './format-error';
