// Test helper: a TCP proxy on 127.0.0.1 that we control, to make a server slow or flaky: it can
// pass traffic through (counting bytes and connections), accept and never answer, or cut every
// connection after N bytes from the server.

import net from "node:net";

export type ProxyMode = { kind: "pass" } | { kind: "silent" } | { kind: "cut"; afterBytes: number };

export interface TcpProxy {
  readonly port: number;
  readonly endpoint: string;
  mode: ProxyMode;
  /** Bytes sent client → server and server → client, and connections, since the last reset. */
  stats: { up: number; down: number; connections: number };
  reset(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number, mode: ProxyMode = { kind: "pass" }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const proxy: TcpProxy = {
    port: 0,
    endpoint: "",
    mode,
    stats: { up: 0, down: 0, connections: 0 },
    reset() {
      this.stats = { up: 0, down: 0, connections: 0 };
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
  };
  const server = net.createServer((client) => {
    track(client);
    proxy.stats.connections++;
    const current = proxy.mode;
    if (current.kind === "silent") return; // Accept, read nothing back, never answer.
    const upstream = net.connect(targetPort, "127.0.0.1");
    track(upstream);
    let down = 0;
    client.on("data", (chunk: Buffer) => {
      proxy.stats.up += chunk.length;
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      proxy.stats.down += chunk.length;
      down += chunk.length;
      if (current.kind === "cut" && down > current.afterBytes) {
        client.write(chunk.subarray(0, Math.max(0, chunk.length - (down - current.afterBytes))));
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  Object.assign(proxy, { port, endpoint: `http://127.0.0.1:${port}` });
  return proxy;
}

/** A port on 127.0.0.1 with nothing listening. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
