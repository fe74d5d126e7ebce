// Owns logging in to an OCI registry the way docker and skopeo do. Credentials come from the
// user's docker config.json ($DOCKER_CONFIG or ~/.docker): `auths` entries (base64 user:password,
// or an identity token), or a credential helper (`credHelpers`, `credsStore`: the
// docker-credential-<name> program). A registry that answers 401 says how in WWW-Authenticate:
// Basic (send the credentials), or Bearer (ask its token service for a token for the scope, with
// the credentials or anonymously, and send that). Tokens are kept per scope until they expire.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { HttpClient, HttpResponse } from "./http-client";
import { discard, readText } from "./http-client";

export type RegistryCredentials =
  | { kind: "password"; username: string; password: string }
  | { kind: "identity-token"; token: string };

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export interface Challenge {
  scheme: "basic" | "bearer";
  params: Record<string, string>;
}

/** Why a login failed, for the caller's CASTLE_REMOTE_AUTH. */
export class LoginFailed extends Error {}

/** The credentials docker would use for host (host[:port]), from config.json or its helper. */
export function findCredentials(host: string, env: NodeJS.ProcessEnv = process.env): RegistryCredentials | undefined {
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), ".docker");
  let config: DockerConfig;
  try {
    config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as DockerConfig;
  } catch {
    return undefined;
  }
  const helper = config.credHelpers?.[host] ?? (config.auths && hostEntry(config.auths, host) === undefined ? config.credsStore : undefined);
  if (helper) return fromHelper(helper, host);
  const entry = config.auths ? hostEntry(config.auths, host) : undefined;
  if (!entry) return undefined;
  if (entry.identitytoken) return { kind: "identity-token", token: entry.identitytoken };
  if (entry.username && entry.password) return { kind: "password", username: entry.username, password: entry.password };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) return { kind: "password", username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/** The auths entry for host: keys may carry a scheme and a path ("https://host:5000/v1/"). */
function hostEntry<T>(auths: Record<string, T>, host: string): T | undefined {
  for (const [name, entry] of Object.entries(auths)) {
    const bare = name.replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");
    if (bare === host) return entry;
  }
  return undefined;
}

function fromHelper(helper: string, host: string): RegistryCredentials | undefined {
  const result = spawnSync(`docker-credential-${helper}`, ["get"], { input: host, encoding: "utf8", timeout: 10_000 });
  if (result.status !== 0 || !result.stdout) return undefined;
  try {
    const { Username, Secret } = JSON.parse(result.stdout) as { Username?: string; Secret?: string };
    if (!Secret) return undefined;
    return Username === "<token>" ? { kind: "identity-token", token: Secret } : { kind: "password", username: Username ?? "", password: Secret };
  } catch {
    return undefined;
  }
}

/** Parses a WWW-Authenticate header (the first challenge Castle can answer). */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const match = /^\s*(Basic|Bearer)\b(.*)$/i.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const [, name, quoted, bare] of (match[2] as string).matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    params[(name as string).toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : (bare as string);
  }
  return { scheme: (match[1] as string).toLowerCase() as Challenge["scheme"], params };
}

/** One registry's Authorization headers: learned from its challenges, kept per scope. */
export class RegistryAuth {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, { header: string; until: number }>();
  /** Token requests in flight, by scope: parallel requests refused together share one. */
  private readonly fetching = new Map<string, Promise<{ header: string; until: number }>>();
  private credentials: RegistryCredentials | undefined | null = null;

  constructor(
    private readonly host: string,
    private readonly http: HttpClient,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** The Authorization header to send for scope, once a challenge said how (else none). */
  header(scope: string): string | undefined {
    if (!this.challenge) return undefined;
    if (this.challenge.scheme === "basic") return this.basic();
    const token = this.tokens.get(scope);
    return token && token.until > Date.now() ? token.header : undefined;
  }

  /**
   * After a 401 to a request sent with `sent` (its Authorization header, if any): learns the
   * challenge and gets what it asks for. Resolves true when a retry may succeed (there is now a
   * header other than the one refused), false when Castle has nothing (more) to offer; rejects
   * with LoginFailed when the token service refused. Requests in flight together may all be
   * refused before the first answer: each compares with what it sent, not with the latest.
   */
  async answer(response: HttpResponse, scope: string, sent: string | undefined, signal?: AbortSignal): Promise<boolean> {
    const challenge = parseChallenge(headerValue(response.headers["www-authenticate"]));
    if (!challenge) return false;
    this.challenge = challenge;
    if (challenge.scheme === "basic") {
      const header = this.basic();
      return header !== undefined && header !== sent;
    }
    const realm = challenge.params.realm;
    if (!realm) return false;
    const current = this.header(scope);
    if (current && current !== sent) return true; // Another request already got a fresh token.
    let pending = this.fetching.get(scope);
    if (!pending) {
      pending = this.fetchToken(realm, challenge.params.service, scope, signal).finally(() => this.fetching.delete(scope));
      this.fetching.set(scope, pending);
    }
    const token = await pending;
    this.tokens.set(scope, token);
    return token.header !== sent;
  }

  private basic(): string | undefined {
    const creds = this.creds();
    if (creds?.kind !== "password") return undefined;
    return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
  }

  private creds(): RegistryCredentials | undefined {
    if (this.credentials === null) this.credentials = findCredentials(this.host, this.env);
    return this.credentials;
  }

  private async fetchToken(realm: string, service: string | undefined, scope: string, signal?: AbortSignal): Promise<{ header: string; until: number }> {
    const creds = this.creds();
    const url = new URL(realm);
    let response: HttpResponse;
    if (creds?.kind === "identity-token") {
      // OAuth2 refresh-token grant, as docker does with an identity token.
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: creds.token, client_id: "castle", scope });
      if (service) form.set("service", service);
      response = await this.http.request({
        method: "POST", url, signal, body: form.toString(), headers: { "content-type": "application/x-www-form-urlencoded" },
      });
    } else {
      if (service) url.searchParams.set("service", service);
      url.searchParams.set("scope", scope);
      const headers: Record<string, string> = {};
      const basic = this.basic();
      if (basic) headers.authorization = basic;
      response = await this.http.request({ method: "GET", url, headers, signal });
    }
    if (response.status !== 200) {
      discard(response);
      throw new LoginFailed(`its token service ${url.host} answered HTTP ${response.status}${creds ? "" : " (no credentials for it in docker's config.json)"}`);
    }
    const body = JSON.parse(await readText(response, 1 << 20)) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token) throw new LoginFailed(`its token service ${url.host} sent no token`);
    // Renew a little early; registries default to 60 s when they say nothing.
    const lifetime = Math.max(10, (body.expires_in ?? 60) - 5) * 1000;
    return { header: `Bearer ${token}`, until: Date.now() + lifetime };
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
