package register

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// AgentServiceRegistration and AgentServiceCheck carry the fields of the same names in Consul's Go API
// (github.com/hashicorp/consul/api), which the articles use; Debian ships no package of that API, so the
// registration goes to the same agent endpoint, /v1/agent/service/register, with net/http.
type AgentServiceRegistration struct {
	ID      string
	Name    string
	Tags    []string           `json:",omitempty"`
	Address string             `json:",omitempty"`
	Port    int                `json:",omitempty"`
	Meta    map[string]string  `json:",omitempty"`
	Check   *AgentServiceCheck `json:",omitempty"`
}

type AgentServiceCheck struct {
	GRPC                           string `json:",omitempty"`
	GRPCUseTLS                     bool   `json:",omitempty"`
	Interval                       string `json:",omitempty"`
	Timeout                        string `json:",omitempty"`
	DeregisterCriticalServiceAfter string `json:",omitempty"`
}

// Consul is one agent's HTTP API, e.g. "127.0.0.1:8500".
type Consul struct {
	Address string
	client  http.Client
}

func NewConsul(address string) *Consul {
	return &Consul{Address: address, client: http.Client{Timeout: 5 * time.Second}}
}

// ServiceRegister adds the instance to the agent, which starts running its check at once.
func (c *Consul) ServiceRegister(reg *AgentServiceRegistration) error {
	body, err := json.Marshal(reg)
	if err != nil {
		return err
	}
	return c.put("/v1/agent/service/register", body)
}

// ServiceDeregister removes the instance and its checks from the agent.
func (c *Consul) ServiceDeregister(id string) error {
	return c.put("/v1/agent/service/deregister/"+id, nil)
}

func (c *Consul) put(path string, body []byte) error {
	req, err := http.NewRequest(http.MethodPut, "http://"+c.Address+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("consul at %s: %w", c.Address, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("consul at %s: PUT %s: %s: %s", c.Address, path, resp.Status, bytes.TrimSpace(text))
	}
	return nil
}
