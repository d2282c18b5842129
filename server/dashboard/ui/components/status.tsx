export function Status(props: { status: string }) {
  return <span class={`status status-${props.status.toLowerCase()}`} data-status={props.status}>{props.status}</span>;
}

export function ErrorMessage(props: { error: unknown }) {
  if (!props.error) return null;
  const message = props.error instanceof Error ? props.error.message : String(props.error);
  return <p class="error" role="alert">{message}</p>;
}

/** Copies text; says so for screen readers too. */
export function CopyButton(props: { text: string; label: string }) {
  const copy = async (event: Event) => {
    const button = event.currentTarget as HTMLButtonElement;
    try {
      await navigator.clipboard.writeText(props.text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed: select the text";
    }
  };
  return <button type="button" onClick={copy} aria-label={props.label}>Copy</button>;
}
