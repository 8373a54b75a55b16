// Docker HEALTHCHECK for a Kavka node: exits 0 when the node's admin /readyz answers 200
// (registered, unfenced, metadata caught up), 1 otherwise. It reads the admin listener from
// KAVKA_ADMIN_LISTENER (the image sets 0.0.0.0:9644) and needs nothing but node.
const listener = process.env.KAVKA_ADMIN_LISTENER ?? '127.0.0.1:9644';
const colon = listener.lastIndexOf(':');
const host = listener.slice(0, colon);
const port = listener.slice(colon + 1);
const dialHost = host === '' || host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host;

setTimeout(() => process.exit(1), 4000).unref();
fetch(`http://${dialHost}:${port}/readyz`).then(
  (response) => process.exit(response.ok ? 0 : 1),
  () => process.exit(1),
);
