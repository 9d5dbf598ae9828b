/* tests/test_redact.c — secret redaction: every kind, line numbers kept,
 * config-only rules, and realistic files that must come out unchanged. */
#include <stdlib.h>

#include "ingest/ingest_impl.h"
#include "tt.h"

typedef struct result {
    tome_buf text;
    tome_redaction *red;
    size_t n;
} result;

static result run(const char *path, const char *in)
{
    result r = {0};
    TT_OK(tome_buf_append(&r.text, in, strlen(in)));
    TT_OK(tome_redact(path, &r.text, &r.red, &r.n));
    return r;
}

static void done(result *r)
{
    tome_buf_free(&r->text);
    free(r->red);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* in must redact to exactly want, with one redaction of kind at line. */
static void expect_one(const char *path, const char *in, const char *want, const char *kind, uint32_t line)
{
    result r = run(path, in);
    TT_EQ_STR(r.text.data, want);
    TT_EQ_INT(r.n, 1);
    if (r.n >= 1) {
        TT_EQ_STR(r.red[0].kind, kind);
        TT_EQ_INT(r.red[0].line, line);
    }
    done(&r);
}

static void expect_unchanged(const char *path, const char *in)
{
    result r = run(path, in);
    if (r.n) {
        tt_fail(__FILE__, __LINE__, "%s: %zu false positive(s), first %s at line %u:\n%s", path, r.n,
                r.red[0].kind, r.red[0].line, r.text.data);
    }
    TT_EQ_STR(r.text.data, in);
    done(&r);
}

#define PEM_BODY                                                          \
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n" \
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n" \
    "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo\n" \
    "9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ0iT9wCS0DRTXu269V264Vf/3jvre\n"

static void test_private_keys_keep_lines(void)
{
    const char *in = "line one\n"
                     "-----BEGIN RSA PRIVATE KEY-----\n" PEM_BODY "-----END RSA PRIVATE KEY-----\n"
                     "after the key\n";
    result r = run("deploy/id_rsa", in);
    TT_EQ_INT(r.n, 1);
    TT_EQ_STR(r.red[0].kind, "private-key");
    TT_EQ_INT(r.red[0].line, 2);
    TT_EQ_INT(count_lines(r.text.data), count_lines(in));
    TT_EQ_STR(r.text.data, "line one\n[REDACTED:private-key]\n\n\n\n\n\nafter the key\n");
    done(&r);

    /* OpenSSH, encrypted PKCS#8 with headers, PGP, CRLF line ends */
    expect_one("k", "-----BEGIN OPENSSH PRIVATE KEY-----\n" PEM_BODY "-----END OPENSSH PRIVATE KEY-----",
               "[REDACTED:private-key]\n\n\n\n\n", "private-key", 1);
    expect_one("k.pem",
               "x\n-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n" PEM_BODY
               "-----END RSA PRIVATE KEY-----\n",
               "x\n[REDACTED:private-key]\n\n\n\n\n\n\n\n\n", "private-key", 2);
    expect_one("k.asc",
               "-----BEGIN PGP PRIVATE KEY BLOCK-----\r\nVersion: x\r\n\r\nlQOYBF0=\r\n" PEM_BODY
               "=abcd\r\n-----END PGP PRIVATE KEY BLOCK-----\r\n",
               "[REDACTED:private-key]\r\n\r\n\r\n\r\n\n\n\n\n\r\n\r\n", "private-key", 1);
    /* inside a string literal with \n escapes, on one line */
    expect_one("app.py",
               "KEY = \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----\\n\"\n",
               "KEY = \"[REDACTED:private-key]\\n\"\n", "private-key", 1);
    /* truncated: BEGIN and base64 lines, no END */
    expect_one("half.pem", "-----BEGIN EC PRIVATE KEY-----\n" PEM_BODY,
               "[REDACTED:private-key]\n\n\n\n\n", "private-key", 1);
}

static void test_token_kinds(void)
{
    expect_one("a.py", "AWS_ID = 'AKIAIOSFODNN7EXAMPLE'\n", "AWS_ID = '[REDACTED:aws-access-key]'\n",
               "aws-access-key", 1);
    expect_one("creds.txt", "\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
               "\naws_secret_access_key = [REDACTED:aws-secret-key]\n", "aws-secret-key", 2);
    expect_one("ci.sh", "curl -H 'Authorization: token ghp_1234567890abcdefghijABCDEFGHIJ123456' x\n",
               "curl -H 'Authorization: token [REDACTED:github-token]' x\n", "github-token", 1);
    expect_one("r.md", "use github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW now\n",
               "use [REDACTED:github-token] now\n", "github-token", 1);
    expect_one("g.sh", "git clone https://oauth2:glpat-AbCdEfGhIjKlMnOpQrSt@gitlab.com/x/y.git\n",
               "git clone https://oauth2:[REDACTED:gitlab-token]@gitlab.com/x/y.git\n", "gitlab-token", 1);
    expect_one("s.js", "const slack = 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx';\n",
               "const slack = '[REDACTED:slack-token]';\n", "slack-token", 1);
    expect_one("s.txt", "hook https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n",
               "hook [REDACTED:slack-webhook]\n", "slack-webhook", 1);
    expect_one("m.kt", "val maps = \"AIzaSyA1234567890abcdefghijklmnopqrstuv\"\n",
               "val maps = \"[REDACTED:google-api-key]\"\n", "google-api-key", 1);
    expect_one("pay.rb", "Stripe.api_key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'\n",
               "Stripe.api_key = '[REDACTED:stripe-key]'\n", "stripe-key", 1);
    expect_one("t.http",
               "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\n",
               "Authorization: Bearer [REDACTED:jwt]\n", "jwt", 1);
    expect_one("db.go", "dsn := \"postgres://app:s3cr3tP4ss@db.internal:5432/app\"\n",
               "dsn := \"postgres://app:[REDACTED:url-password]@db.internal:5432/app\"\n", "url-password", 1);
}

static void test_config_assignments(void)
{
    expect_one(".env", "DEBUG=1\nDB_PASSWORD=hunter2hunter2\nPORT=8080\n",
               "DEBUG=1\nDB_PASSWORD=[REDACTED:password]\nPORT=8080\n", "password", 2);
    expect_one("config/prod.yaml", "db:\n  host: x\n  password: \"correct horse battery\"\n",
               "db:\n  host: x\n  password: \"[REDACTED:password]\"\n", "password", 3);
    expect_one("settings.json", "{\n  \"user\": \"a\",\n  \"apiKey\": \"abc123def\",\n}\n",
               "{\n  \"user\": \"a\",\n  \"apiKey\": \"[REDACTED:secret]\",\n}\n", "secret", 3);
    expect_one("app.ini", "[auth]\nclient_secret = s3cret-value\n", "[auth]\nclient_secret = [REDACTED:secret]\n",
               "secret", 2);
    expect_one("a.properties", "spring.datasource.password=Pa55word!\n",
               "spring.datasource.password=[REDACTED:password]\n", "password", 1);
    expect_one("docker-compose.yml", "services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD=example123\n",
               "services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD=[REDACTED:password]\n", "password", 4);
    expect_one("Cargo.toml.config", "token = 'abc-def-ghi'\n", "token = '[REDACTED:secret]'\n", "secret", 1);
    expect_one(".env.local", "export GITHUB_TOKEN=notreallyatoken\n",
               "export GITHUB_TOKEN=[REDACTED:secret]\n", "secret", 1);
    /* placeholders, references, booleans, empties are not secrets */
    expect_unchanged("values.yaml",
                     "password: ${DB_PASSWORD}\n"
                     "api_key: \"{{ .Values.apiKey }}\"\n"
                     "token: <your-token-here>\n"
                     "secret: null\n"
                     "csrf_token: true\n"
                     "password:\n"
                     "DB_PASSWORD=\n"
                     "secret: !vault |\n"
                     "password_min_length: 8\n"
                     "token_expiry: 3600\n"
                     "secretName: db-creds\n"
                     "max_tokens: 4096\n"
                     "password: '*****'\n");
    /* the same assignment in source code is left alone (config rules only) */
    expect_unchanged("src/db.c", "const char *password = \"hunter2\";\n");
}

static void test_high_entropy(void)
{
    expect_one("settings.py", "SECRET_KEY = \"Zx8f3kQ9vB2mN7pL4rT6yW1cE5gH0jKs\"\n",
               "SECRET_KEY = \"[REDACTED:high-entropy]\"\n", "high-entropy", 1);
    expect_one("main.go", "var signingKey = `9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08`\n",
               "var signingKey = `[REDACTED:high-entropy]`\n", "high-entropy", 1);
    expect_one("app.toml", "[x]\nsession_cookie_salt = q8Xc2Vb7Nm4Lk9Jh3Gf6Ds1Az5\n",
               "[x]\nsession_cookie_salt = [REDACTED:high-entropy]\n", "high-entropy", 2);
    /* low entropy or wrong shape under a secret-ish key stays */
    expect_unchanged("x.py", "cache_key = \"user_profile_settings_v2\"\nAUTH_HEADER = \"Authorization\"\n");
}

static void test_realistic_files_unchanged(void)
{
    expect_unchanged("package-lock.json",
                     "{\n  \"name\": \"app\",\n  \"lockfileVersion\": 3,\n  \"packages\": {\n"
                     "    \"node_modules/lodash\": {\n      \"version\": \"4.17.21\",\n"
                     "      \"resolved\": \"https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz\",\n"
                     "      \"integrity\": \"sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg==\"\n"
                     "    }\n  }\n}\n");
    expect_unchanged("Cargo.lock",
                     "[[package]]\nname = \"serde\"\nversion = \"1.0.197\"\n"
                     "source = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
                     "checksum = \"3fb1c873e1b9b056a4dc4c0c198b24c3ffa059243875552b2bd0933b1aee4ce2\"\n");
    expect_unchanged("go.sum",
                     "github.com/google/uuid v1.6.0 h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=\n"
                     "github.com/google/uuid v1.6.0/go.mod h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo=\n");
    expect_unchanged("yarn.lock",
                     "lodash@^4.17.21:\n  version \"4.17.21\"\n"
                     "  integrity sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg==\n");
    expect_unchanged("docs/CHANGELOG.md",
                     "# Changes\n\nFixed in commit 3f2a9c1e4b5d6f7a8b9c0d1e2f3a4b5c6d7e8f90 (see #123).\n"
                     "Request id 123e4567-e89b-12d3-a456-426614174000 was logged.\n"
                     "Tokens start with `ghp_`; never commit a password or a secret.\n"
                     "Clone https://github.com/user/repo.git or git@github.com:user/repo.git.\n"
                     "The server listens on http://localhost:8080/api and http://[::1]:8080/.\n");
    expect_unchanged("src/pem.c",
                     "/* PEM reader */\n#include <string.h>\n"
                     "#define PEM_BEGIN \"-----BEGIN RSA PRIVATE KEY-----\"\n"
                     "#define PEM_END \"-----END RSA PRIVATE KEY-----\"\n"
                     "static int is_key(const char *s) { return strstr(s, PEM_BEGIN) != NULL; }\n"
                     "static const char *key = \"default\";\n"
                     "static const char *expected_sha256 = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\";\n"
                     "#define HMAC_KEY_SIZE 32\n"
                     "uint8_t session_key[HMAC_KEY_SIZE];\n");
    expect_unchanged("app/settings.py",
                     "import os\nSECRET_KEY = os.environ[\"SECRET_KEY\"]\n"
                     "token = request.headers.get(\"Authorization\")\npassword = getpass.getpass()\n"
                     "PUBLIC_KEY = \"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEj5Xc0aB3xq7K1m2N9pQ4rS6tU8vW\"\n");
    expect_unchanged("web/index.html",
                     "<script src=\"https://cdn.example.com/x.js\" "
                     "integrity=\"sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC\" "
                     "crossorigin=\"anonymous\"></script>\n");
    expect_unchanged("k8s/deploy.yaml",
                     "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      volumes:\n"
                     "        - name: tls\n          secret:\n            secretName: web-tls\n"
                     "      containers:\n        - image: nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31\n"
                     "          env:\n            - name: API_KEY\n              valueFrom:\n"
                     "                secretKeyRef: {name: api, key: token}\n");
    expect_unchanged("src/lib.rs",
                     "#[serde(rename = \"api_key\")]\npub api_key: String,\n"
                     "let key_len = token.len();\nfn verify(signature: &[u8]) -> bool { true }\n");
}

static void test_no_text_and_no_out(void)
{
    tome_buf b = {0};
    TT_OK(tome_redact("x", &b, NULL, NULL));
    TT_OK(tome_buf_append(&b, "AKIAIOSFODNN7EXAMPLE", 20));
    TT_OK(tome_redact(NULL, &b, NULL, NULL));
    TT_EQ_STR(b.data, "[REDACTED:aws-access-key]");
    tome_buf_free(&b);
    /* two secrets on separate lines get their own line numbers */
    result r = run("x.txt", "a\nAKIAIOSFODNN7EXAMPLE\nb\n\nghp_1234567890abcdefghijABCDEFGHIJ123456\n");
    TT_EQ_INT(r.n, 2);
    if (r.n == 2) {
        TT_EQ_INT(r.red[0].line, 2);
        TT_EQ_INT(r.red[1].line, 5);
    }
    done(&r);
}

/* may_hit: the repeated unit is itself secret-shaped (a JWT chain). */
static void run_repeated_x(const char *path, const char *unit, size_t total, int may_hit)
{
    size_t u = strlen(unit);
    char *s = malloc(total + 1);
    TT_CHECK(s != NULL);
    if (!s) return;
    for (size_t i = 0; i < total; i++) s[i] = unit[i % u];
    s[total] = '\0';
    tome_buf b = {0};
    TT_OK(tome_buf_append(&b, s, total));
    tome_redaction *red = NULL;
    size_t n = 0;
    TT_OK(tome_redact(path, &b, &red, &n));
    if (!may_hit) {
        TT_EQ_INT(n, 0);
        TT_EQ_INT(b.len, total);
    }
    free(red);
    tome_buf_free(&b);
    free(s);
}

static void run_repeated(const char *path, const char *unit, size_t total)
{
    run_repeated_x(path, unit, total, 0);
}

static void test_pathological_inputs(void)
{
    /* 1 MiB each of text built to make a careless pattern quadratic: long
     * runs of value characters full of '=' and ':', endless key names,
     * "://" without '@', BEGIN lines without keys, config lines without
     * values. No timing assertion: the suite's run time shows it. */
    size_t n = 1 << 20;
    run_repeated("big.min.js", "keyA=Bc9+/", n);
    run_repeated("big.min.js", "=", n);
    run_repeated("x.env", "token_token_token_", n);
    run_repeated("a.yaml", "password:\n", n);
    run_repeated("u.txt", "http://a:b", n);
    run_repeated("k.pem", "-----BEGIN RSA PRIVATE KEY-----\n", n);
    run_repeated("b64.txt", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQy", n);
    run_repeated("s.py", "secret_key = 'x' + ", n);
    run_repeated("t.txt", "eyJ", n);
    run_repeated_x("t.txt", "eyJhbGciOiJIUzI1NiJ9.", n, 1);
    run_repeated("t.txt", "ghp_", n);
    run_repeated("t.txt", "sk_live_", n);
    run_repeated("t.txt", "AKIA", n);
    run_repeated("t.txt", "aws_secret_", n);
    run_repeated("t.txt", "://a:b@", n);
    run_repeated("t.json", "\"api_key\": \"", n);
}

int main(void)
{
    TT_RUN(test_private_keys_keep_lines);
    TT_RUN(test_token_kinds);
    TT_RUN(test_config_assignments);
    TT_RUN(test_high_entropy);
    TT_RUN(test_realistic_files_unchanged);
    TT_RUN(test_no_text_and_no_out);
    TT_RUN(test_pathological_inputs);
    return tt_finish();
}
