// Package httpboot is the HTTP side of pxewim: it serves iPXE scripts rendered per client and
// the files of any store tree (an [io/fs.FS] whose files are [io.ReaderAt]: a WIM image, a local
// folder, an ISO, an SFTP folder) with Range, HEAD, keep-alive and standard HTTP caching.
//
// # URL scheme
//
//	/boot.ipxe                   the client's first iPXE script    (Config.Script, name "boot.ipxe")
//	/ipxe/{name}                 any other script or menu           (Config.Script, name {name})
//	/files/{path...}             a file of the client's tree        (Config.Resolve)
//	/blob/{sha1hex}/{path...}    the same file, content-addressed: served only while the file's
//	                             Hash() equals {sha1hex}
//	/mac/{mac}/...               any of the above, with the client's MAC in the path (for clients
//	                             such as UEFI HTTP Boot whose URL comes verbatim from DHCP)
//
// A client is identified by ?mac= (iPXE: ${mac:hexhyp}) or the /mac/ prefix, else by its remote
// IP through [Clients] (what DHCP learned). iPXE variables in the query (uuid, arch = ${buildarch},
// platform = ${platform}, anything else) reach the script renderer in [ClientInfo]; [IPXEQuery]
// is the query string to append to script URLs handed to iPXE, also in a DHCP boot file name
// (iPXE expands it there: tested with Debian's iPXE ROM in QEMU). [FileURL], [BlobURL],
// [ScriptURL] and [URL] build URLs for scripts.
//
// # Caching model
//
// Files extracted from WIMs are content-addressed: the WIM blob table stores each stream's SHA-1,
// which the wim package exposes as Hash(). A /blob/ URL names that hash, so its bytes can never
// change; it is served with "Cache-Control: public, max-age=31536000, immutable" and the hash as
// strong ETag. Script generators should hand clients blob URLs ([URL] does this), so a site that
// outgrows one server can put nginx proxy_cache or Varnish in front: after the first download of a
// boot.wim, every other client is served by the cache and pxewim never sees the request. If the
// store changes, the script names a new hash and therefore a new URL: no purge is ever needed.
//
// A store may still be checking a file's bytes when it is asked for (pxewim's local store
// verifies each WIM in the background, once per file version): such files implement
// [Verdicter], and until their verdict is in, /blob/ URLs are served "no-cache" rather than
// immutable, range requests (and full GETs of files that do not check their own full reads)
// wait for the verdict up to Config.VerifyWait, then get 503 with Retry-After, and a file
// known to be damaged gets 500. Full GETs of streams inside WIMs are served at once: the wim
// package checks their SHA-1 before their last bytes leave, so no client or cache ever holds
// a complete wrong body.
//
// /files/ URLs name mutable content (a folder where an admin replaces a file), so they carry a
// strong ETag (the SHA-1 when the file has one, else a validator derived from path, size and
// mtime), Last-Modified, and "Cache-Control: no-cache": any cache may keep the bytes but must
// revalidate (If-None-Match -> 304) before reuse. Config.FilesMaxAge relaxes that to a short
// max-age when the admin accepts serving a replaced file for that long (nginx, which never stores
// no-cache responses, then caches and revalidates with proxy_cache_revalidate). Scripts are
// per client: "private, no-cache", never stored by shared caches.
//
// A cache in front, as the tests run it (nginx 1.22):
//
//	proxy_cache_path /var/cache/pxewim keys_zone=pxewim:10m max_size=50g inactive=30d;
//	location / {
//	    proxy_pass http://PXEWIM:PORT;
//	    proxy_http_version 1.1;  proxy_set_header Connection "";
//	    proxy_cache pxewim;
//	    proxy_cache_revalidate on;   # If-None-Match to pxewim when a /files/ entry is stale
//	    proxy_cache_lock on;         # a lab booting at once: one fetch per blob, not one per client
//	}
//
// Scripts and /files/ then still reach pxewim; blob downloads do so once per blob.
//
// Bodies are served with [net/http.ServeContent] over an [io.SectionReader] on the file's ReadAt,
// so ranges (single, suffix, multiple), If-Range and conditional requests follow the standard
// library, no file is buffered whole, and any number of requests read one file concurrently.
//
// Paths are cleaned before any lookup: backslashes become '/', "." and empty segments drop,
// and a ".." segment (also as %2e%2e or with %5c), a NUL byte, invalid UTF-8 or more than
// 4096 bytes is refused with 400, so no request names a path outside the tree. Symbolic links
// are the tree's business: os.DirFS follows them out of its folder, os.OpenRoot(dir).FS() does
// not (its refusal is served as 404), so a local-folder store should use the latter.
package httpboot
