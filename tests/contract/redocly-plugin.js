// gatehouse's own lint rules, loaded by redocly.yaml.

/** Named component schemas (option `schemas`) must exist and carry an `example`. */
function schemasHaveExamples(options) {
  const names = options.schemas ?? [];
  return {
    Root: {
      leave(root, ctx) {
        const schemas = root.components?.schemas ?? {};
        for (const name of names) {
          const location = ctx.location.child(["components", "schemas", name]);
          if (!(name in schemas)) {
            ctx.report({ message: `Schema \`${name}\` is missing.`, location });
          } else if (schemas[name].example === undefined && schemas[name].examples === undefined) {
            ctx.report({ message: `Schema \`${name}\` must have an example.`, location });
          }
        }
      },
    },
  };
}

export default function gatehouseRules() {
  return {
    id: "gatehouse",
    rules: {
      oas3: { "schemas-have-examples": schemasHaveExamples },
    },
  };
}
