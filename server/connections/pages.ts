/** The small HTML pages the browser sees during a connect (no script; the text names what happened). */
const escape = (text: string) => text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escape(title)} · Stasis</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1d232b}h1{font-size:1.4rem}code{background:#eef1f4;padding:0 .25rem}input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}button{font:inherit;margin-top:1rem;padding:.4rem 1rem}</style>
</head><body>${body}</body></html>`;
}

/** A failed connect: the problem's code (in `data-code`) and a sentence; nothing was stored. */
export function errorPage(code: string, title: string, message: string): string {
  return layout(title, `<main data-code="${escape(code)}"><h1>${escape(title)}</h1><p>${escape(message)}</p><p>Nothing was stored. Error code: <code>${escape(code)}</code></p></main>`);
}

export function apiKeyFormPage(integration: string, action: string): string {
  return layout(
    `Connect ${integration}`,
    `<main><h1>Connect ${escape(integration)}</h1><form method="post" action="${escape(action)}"><label for="apiKey">API key for ${escape(integration)}</label><input id="apiKey" name="apiKey" type="password" autocomplete="off" required maxlength="4000"><button type="submit">Save key</button></form></main>`,
  );
}
