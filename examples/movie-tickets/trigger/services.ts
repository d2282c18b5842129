// The cinema's booking, payment and email services, reached over HTTP. Locally these are the
// stand-ins in ../services/stand-in.ts; set MOVIE_SERVICES_URL to point elsewhere.
export async function callService<T>(path: string, body: unknown = {}): Promise<T> {
  const base = process.env.MOVIE_SERVICES_URL;
  if (!base) throw new Error("MOVIE_SERVICES_URL is not set");
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}
