package main

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/vmware/govmomi/vim25/types"
)

// pager emulates server-side paging of RetrievePropertiesEx. vcsim 0.24.2 ignores
// options.maxObjects, always answers with every object and no token, and does not
// implement ContinueRetrievePropertiesEx at all. A real host pages (with maxObjects, and
// by its own policy without it), so a client that ignores the token silently loses
// objects on a big host. With -page-size N we cut vcsim's result into pages of
// min(maxObjects, N) before it is encoded (front.go retrieveStreamed) and serve the
// rest through ContinueRetrievePropertiesEx.
type pager struct {
	pageSize int

	mu      sync.Mutex
	serial  int
	pending map[string]*pendingResult
	order   []string // oldest first, to bound memory if clients abandon tokens
}

type pendingResult struct {
	objects []types.ObjectContent
	limit   int
	session string // tokens belong to the session that got them, as on a real host
}

const maxPendingTokens = 256

func newPager(pageSize int) *pager {
	return &pager{pageSize: pageSize, pending: map[string]*pendingResult{}}
}

// limit is the page size for a request that asked for maxObjects (0: unset).
func (p *pager) limit(maxObjects int) int {
	if maxObjects > 0 && maxObjects < p.pageSize {
		return maxObjects
	}
	return p.pageSize
}

// firstPage trims res to one page and remembers the rest under a new token.
func (p *pager) firstPage(res *types.RetrieveResult, limit int, session string) bool {
	if res == nil || len(res.Objects) <= limit {
		return false
	}
	rest := append([]types.ObjectContent(nil), res.Objects[limit:]...)
	res.Objects = res.Objects[:limit]
	res.Token = p.store(&pendingResult{objects: rest, limit: limit, session: session})
	return true
}

func (p *pager) store(r *pendingResult) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serial++
	token := strconv.Itoa(p.serial)
	p.pending[token] = r
	p.order = append(p.order, token)
	for len(p.order) > maxPendingTokens {
		delete(p.pending, p.order[0])
		p.order = p.order[1:]
	}
	return token
}

// nextPage serves ContinueRetrievePropertiesEx.
func (p *pager) nextPage(token, session string) (*types.RetrieveResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.pending[token]
	if !ok || r.session != session {
		return nil, fmt.Errorf("unknown or finished token %q", token)
	}
	res := &types.RetrieveResult{}
	if len(r.objects) <= r.limit {
		res.Objects = r.objects
		p.forgetLocked(token)
	} else {
		res.Objects = r.objects[:r.limit]
		r.objects = r.objects[r.limit:]
		res.Token = token
	}
	return res, nil
}

func (p *pager) cancel(token, session string) {
	p.mu.Lock()
	if r, ok := p.pending[token]; ok && r.session == session {
		p.forgetLocked(token)
	}
	p.mu.Unlock()
}

func (p *pager) forgetLocked(token string) {
	delete(p.pending, token)
	for i, t := range p.order {
		if t == token {
			p.order = append(p.order[:i], p.order[i+1:]...)
			break
		}
	}
}
