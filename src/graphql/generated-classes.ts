/** Classes type-graphql reads, made at run time from declarations (the data API's models, their file fields). */

/** A class made at run time; decorators are applied to its prototype. */
interface DynamicClass {
  new (): object;
  readonly prototype: object;
}

/** A class with a given name, so type-graphql and stack traces show it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a mixin base must take any arguments (TS2545)
export function namedClass(name: string, base?: new (...args: any[]) => object): DynamicClass {
  const holder = { [name]: base ? class extends base {} : class {} };
  return holder[name];
}

export type MethodDecoratorFunction = (target: object, key: string, descriptor: PropertyDescriptor) => void;
export type ParameterDecoratorFunction = (target: object, key: string, index: number) => void;

/** Adds a method to a generated class and decorates it as `@method name(@params[0] a, @params[1] b)` would. */
export function defineMethod(
  target: { prototype: object },
  name: string,
  implementation: Function,
  method: MethodDecorator,
  params: ParameterDecoratorFunction[],
): void {
  Object.defineProperty(target.prototype, name, { value: implementation, writable: true, configurable: true });
  (method as MethodDecoratorFunction)(target.prototype, name, Object.getOwnPropertyDescriptor(target.prototype, name)!);
  params.forEach((param, index) => param(target.prototype, name, index));
}
