/* json.c: just enough JSON for what Castle itself writes and the launcher must read: the
 * members of one flat object (an instance record, a status line of the sandbox helper), strings
 * unescaped, other scalars as their text, nested values skipped. And escaping for what the
 * launcher writes (the instance id). */
#include "launcher.h"

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(p[i]);
    if (d < 0) return false;
    v = v * 16 + (unsigned)d;
  }
  *out = v;
  return true;
}

static size_t put_utf8(char *out, unsigned cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  out[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* p at the opening quote; returns past the closing one, the unescaped text in *out (malloc'd). */
static const char *string(const char *p, char **out) {
  p++;
  size_t cap = strlen(p) + 1, n = 0;
  char *buf = xrealloc(NULL, cap);
  for (;;) {
    char ch = *p++;
    if (ch == '\0') break;
    if (ch == '"') {
      buf[n] = '\0';
      *out = buf;
      return p;
    }
    if (ch != '\\') {
      buf[n++] = ch;
      continue;
    }
    char esc = *p++;
    unsigned cp;
    switch (esc) {
      case '"':
      case '\\':
      case '/':
        buf[n++] = esc;
        break;
      case 'b':
        buf[n++] = '\b';
        break;
      case 'f':
        buf[n++] = '\f';
        break;
      case 'n':
        buf[n++] = '\n';
        break;
      case 'r':
        buf[n++] = '\r';
        break;
      case 't':
        buf[n++] = '\t';
        break;
      case 'u': {
        if (!hex4(p, &cp)) goto bad;
        p += 4;
        unsigned low;
        if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, &low) &&
            low >= 0xdc00 && low < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          p += 6;
        }
        /* \uXXXX is 6 bytes in, at most 4 out: the buffer (strlen + 1) is always enough. */
        n += put_utf8(buf + n, cp);
        break;
      }
      default:
        goto bad;
    }
  }
bad:
  free(buf);
  return NULL;
}

/* Past a nested object or array (p at its opening bracket). */
static const char *skip_nested(const char *p) {
  int depth = 0;
  for (; *p != '\0'; p++) {
    if (*p == '"') {
      for (p++; *p != '\0' && *p != '"'; p++)
        if (*p == '\\' && p[1] != '\0') p++;
      if (*p == '\0') return NULL;
    } else if (*p == '{' || *p == '[') {
      depth++;
    } else if (*p == '}' || *p == ']') {
      if (--depth == 0) return p + 1;
    }
  }
  return NULL;
}

bool json_object_fields(const char *text, json_field_fn field, void *ctx) {
  const char *p = skip_ws(text);
  if (*p != '{') return false;
  p = skip_ws(p + 1);
  if (*p == '}') return true;
  for (;;) {
    if (*p != '"') return false;
    char *key = NULL;
    p = string(p, &key);
    if (p == NULL) return false;
    autofree char *owned_key = key;
    p = skip_ws(p);
    if (*p != ':') return false;
    p = skip_ws(p + 1);
    if (*p == '"') {
      char *value = NULL;
      p = string(p, &value);
      if (p == NULL) return false;
      field(ctx, owned_key, value, true);
      free(value);
    } else if (*p == '{' || *p == '[') {
      p = skip_nested(p);
      if (p == NULL) return false;
    } else {
      size_t len = strcspn(p, ",} \t\r\n");
      if (len == 0 || len > 64) return false;
      char raw[65];
      memcpy(raw, p, len);
      raw[len] = '\0';
      field(ctx, owned_key, raw, false);
      p += len;
    }
    p = skip_ws(p);
    if (*p == '}') return true;
    if (*p != ',') return false;
    p = skip_ws(p + 1);
  }
}

