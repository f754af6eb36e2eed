package daemon

import (
	"reflect"
	"strings"
	"testing"
)

func TestACMEOptionsFromEnv(t *testing.T) {
	c, err := Load(env(map[string]string{
		"TLS_ACME": "true", "NODE_DOMAIN": "chat.example.org:8443", "TLS_ACME_EMAIL": "ops@example.org",
		"TLS_ACME_DIRECTORY_URL": "https://acme-staging-v02.api.letsencrypt.org/directory",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLSACME || c.TLSACMEEmail != "ops@example.org" || !reflect.DeepEqual(c.acmeDomainList(), []string{"chat.example.org"}) {
		t.Fatalf("TLS_ACME_DOMAINS must default to NODE_DOMAIN's host: %+v %v", c, c.acmeDomainList())
	}
	c, err = Load(env(map[string]string{"TLS_ACME": "true", "TLS_ACME_DOMAINS": "A.example.org, b.example.org"}))
	if err != nil || !reflect.DeepEqual(c.acmeDomainList(), []string{"a.example.org", "b.example.org"}) {
		t.Fatalf("TLS_ACME_DOMAINS: %v %v", c.acmeDomainList(), err)
	}
}

func TestACMERefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		set  func(*Config)
		want string
	}{
		"no domain":          {func(c *Config) {}, "TLS_ACME_DOMAINS: required"},
		"an IP address":      {func(c *Config) { c.NodeDomain = "127.0.0.1:8080" }, "not a DNS name"},
		"a name without dot": {func(c *Config) { c.TLSACMEDomains = []string{"localhost"} }, "not a DNS name"},
		"with TLS files": {func(c *Config) {
			c.NodeDomain, c.TLSEnabled, c.TLSCertPath, c.TLSKeyPath = "a.example", true, "/c", "/k"
		}, "not both"},
		"behind a TLS proxy": {func(c *Config) { c.NodeDomain, c.TLSTerminatedByProxy = "a.example", true }, "TLS_TERMINATED_BY_PROXY"},
		"plain directory":    {func(c *Config) { c.NodeDomain, c.TLSACMEDirectoryURL = "a.example", "http://ca.example/dir" }, "TLS_ACME_DIRECTORY_URL"},
		"missing CA file":    {func(c *Config) { c.NodeDomain, c.TLSACMECAFile = "a.example", "/no/such/ca.pem" }, "TLS_ACME_CA_FILE"},
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			c.TLSACME = true
			tc.set(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q in %v", tc.want, err)
			}
		})
	}
	c := DefaultConfig()
	c.TLSACME, c.NodeDomain = true, "a.example"
	if err := c.Validate(); err != nil {
		t.Fatalf("a valid ACME configuration: %v", err)
	}
}
