// Package docs holds ztopo's reference pages (Markdown, one per topic). It
// has no code: its test checks that the pages and the README link only to
// files that exist in the repository.
package docs
