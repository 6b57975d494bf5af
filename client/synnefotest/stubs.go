package synnefotest

import "net/http"

func (c *Cloud) servePithos(w http.ResponseWriter, r *http.Request, rest string)  { endpointNotFound(w) }
func (c *Cloud) serveCompute(w http.ResponseWriter, r *http.Request, rest string) { endpointNotFound(w) }
func (c *Cloud) serveNetwork(w http.ResponseWriter, r *http.Request, rest string) { endpointNotFound(w) }
func (c *Cloud) serveVolume(w http.ResponseWriter, r *http.Request, rest string)  { endpointNotFound(w) }
