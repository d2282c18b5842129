export { callStasisApi as apiCall } from "../builder/index.ts";
