// GraphiQL against this server's POST /v1. A file, not an inline script, so
// the page's Content-Security-Policy allows scripts from this origin only.
const fetcher = GraphiQL.createFetcher({ url: window.location.origin + '/v1' });
ReactDOM.createRoot(document.getElementById('graphiql')).render(
  React.createElement(GraphiQL, {
    fetcher,
    defaultEditorToolsVisibility: 'headers',
    // Headers are kept in this tab only: a pasted token is not persisted.
    shouldPersistHeaders: false,
    defaultHeaders: '{\n  "Authorization": "<paste a token from `nspool token create`>"\n}',
    defaultQuery: '# The free pool namespaces (any token):\n{\n  availableNamespaces { name }\n}\n',
  }),
);
