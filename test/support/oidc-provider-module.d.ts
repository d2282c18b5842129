// oidc-provider ships no types: what the connection tests use of it.
declare module "oidc-provider" {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Any = any;
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, Any>);
    Grant: Any;
    on(event: string, listener: (...args: Any[]) => void): this;
    use(middleware: (ctx: Any, next: () => Promise<void>) => Promise<void>): void;
    callback(): (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void;
    interactionDetails(req: Any, res: Any): Promise<Any>;
    interactionFinished(req: Any, res: Any, result: Any, options?: Any): Promise<void>;
  }
}
