// Tests for finding registry credentials the way docker does (config.json `auths` in its forms,
// identity tokens, credential helper programs) and for parsing WWW-Authenticate challenges.
// Logging in against a real registry is tested in remote-oci-backend.test.ts.

import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { findCredentials, parseChallenge } from "../src/remote/oci-auth";
import { tempDir } from "./helpers/trees";

function configDir(config: unknown): string {
  const dir = tempDir("castle-docker-");
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

const b64 = (text: string) => Buffer.from(text).toString("base64");

describe("findCredentials", () => {
  it("reads auths entries keyed by host, with or without a scheme and path", () => {
    const dir = configDir({
      auths: {
        "127.0.0.1:5000": { auth: b64("ci:pa:ss") },
        "https://10.0.0.9:443/v1/": { username: "u", password: "p" },
        "10.0.0.10": { identitytoken: "refresh-me" },
      },
    });
    const env = { DOCKER_CONFIG: dir };
    expect(findCredentials("127.0.0.1:5000", env)).toEqual({ kind: "password", username: "ci", password: "pa:ss" });
    expect(findCredentials("10.0.0.9:443", env)).toEqual({ kind: "password", username: "u", password: "p" });
    expect(findCredentials("10.0.0.10", env)).toEqual({ kind: "identity-token", token: "refresh-me" });
    expect(findCredentials("127.0.0.1:5001", env)).toBeUndefined();
  });

  it("looks in $HOME/.docker when DOCKER_CONFIG is unset, and survives a missing or broken file", () => {
    const home = tempDir("castle-home-");
    mkdirSync(join(home, ".docker"));
    writeFileSync(join(home, ".docker/config.json"), JSON.stringify({ auths: { "h:1": { auth: b64("a:b") } } }));
    expect(findCredentials("h:1", { HOME: home })).toMatchObject({ username: "a" });
    expect(findCredentials("h:1", { DOCKER_CONFIG: tempDir() })).toBeUndefined();
    const broken = tempDir();
    writeFileSync(join(broken, "config.json"), "{ not json");
    expect(findCredentials("h:1", { DOCKER_CONFIG: broken })).toBeUndefined();
  });

  it("asks a credential helper program (credHelpers, credsStore)", () => {
    const bin = tempDir("castle-bin-");
    const helper = join(bin, "docker-credential-castletest");
    writeFileSync(helper, `#!/bin/sh\nread host\nif [ "$host" = "127.0.0.1:7000" ]; then echo '{"ServerURL":"x","Username":"robot","Secret":"s3"}'; else echo "credentials not found" >&2; exit 1; fi\n`);
    chmodSync(helper, 0o755);
    const env = { PATH: `${bin}:${process.env.PATH}` };
    const withHelpers = configDir({ credHelpers: { "127.0.0.1:7000": "castletest" } });
    const prev = process.env.PATH;
    process.env.PATH = env.PATH;
    try {
      expect(findCredentials("127.0.0.1:7000", { DOCKER_CONFIG: withHelpers })).toEqual({ kind: "password", username: "robot", password: "s3" });
      const withStore = configDir({ credsStore: "castletest", auths: {} });
      expect(findCredentials("127.0.0.1:7000", { DOCKER_CONFIG: withStore })).toMatchObject({ username: "robot" });
      expect(findCredentials("127.0.0.1:7001", { DOCKER_CONFIG: withStore })).toBeUndefined();
    } finally {
      process.env.PATH = prev;
    }
  });
});

describe("parseChallenge", () => {
  it("reads Basic and Bearer challenges with quoted and bare parameters", () => {
    expect(parseChallenge('Basic realm="castle-test"')).toEqual({ scheme: "basic", params: { realm: "castle-test" } });
    expect(parseChallenge('Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push"')).toEqual({
      scheme: "bearer", params: { realm: "http://127.0.0.1:1/token", service: "reg", scope: "repository:a/b:pull,push" },
    });
    expect(parseChallenge("bearer realm=http://x/token, service=reg")).toMatchObject({ scheme: "bearer", params: { realm: "http://x/token", service: "reg" } });
    expect(parseChallenge("Negotiate abc")).toBeUndefined();
    expect(parseChallenge(undefined)).toBeUndefined();
  });
});
