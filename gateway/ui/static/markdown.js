// Markdown from models and tools, made safe to show.
//
// Raw HTML in the text is shown as text, not interpreted: a log line quoted in a report
// that contains <img onerror=…> or <script> reads as exactly that. Images become links
// (nothing loads from another host), links keep http(s) and mailto only and open in a new
// tab without a referrer, and DOMPurify checks the result once more.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

let configured = null;

function markedInstance() {
  if (configured) return configured;
  const { Marked } = window.marked;
  configured = new Marked({ gfm: true, breaks: false, async: false });
  configured.use({
    renderer: {
      html(token) {
        return escapeHtml(token.text);
      },
      image(token) {
        return `<span class="md-image">[image: ${escapeHtml(token.text || "")}] ${escapeHtml(token.href || "")}</span>`;
      },
    },
  });
  return configured;
}

const SAFE_LINK = /^(https?:|mailto:|#)/i;
let hooked = false;

function purifier() {
  const purify = window.DOMPurify;
  if (!hooked) {
    purify.addHook("afterSanitizeAttributes", (node) => {
      if (node.tagName === "A") {
        const href = node.getAttribute("href") || "";
        if (!SAFE_LINK.test(href)) node.removeAttribute("href");
        node.setAttribute("rel", "noopener noreferrer nofollow");
        node.setAttribute("target", "_blank");
      }
    });
    hooked = true;
  }
  return purify;
}

const PURIFY = {
  RETURN_DOM_FRAGMENT: true,
  FORBID_TAGS: ["img", "style", "form", "input", "button", "textarea", "select", "iframe", "svg", "math", "video", "audio", "source", "picture"],
  FORBID_ATTR: ["style", "srcset", "src"],
  ALLOW_DATA_ATTR: false,
};

// A DocumentFragment of the rendered text; a plain <pre> when the libraries are missing.
export function renderMarkdown(text) {
  const source = String(text ?? "");
  if (!window.marked || !window.DOMPurify) {
    const pre = document.createElement("pre");
    pre.textContent = source;
    const fragment = document.createDocumentFragment();
    fragment.append(pre);
    return fragment;
  }
  const html = markedInstance().parse(source);
  return purifier().sanitize(html, PURIFY);
}
