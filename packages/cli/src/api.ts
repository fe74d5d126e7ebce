// The definition API, as castle.ts files import it: `import { layer, source, system } from "castle"`.
export * from "@castle/graph/define";
