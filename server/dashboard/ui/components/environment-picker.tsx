import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.ts";

export type EnvChoice = string;
/** The admin's choice of every environment at once (the run list only). */
export const ALL_ENVIRONMENTS = "*";

interface ProjectView {
  slug: string;
  environments: Array<{ slug: string; archived: boolean }>;
}

/** The admin's choice of environment: every route it then calls acts in that one, as its key would. */
export function EnvironmentPicker(props: { value: string; onChange(choice: EnvChoice): void }) {
  const [projects, setProjects] = useState<ProjectView[]>([]);
  // The list may arrive after the admin already chose: the default is for the value at that moment, not at mount.
  const current = useRef(props.value);
  current.current = props.value;
  useEffect(() => {
    api<{ data: ProjectView[] }>("GET", "/api/v1/admin/projects").then((r) => {
      setProjects(r.data);
      const all = r.data.flatMap((p) => p.environments.map((e) => `${p.slug}/${e.slug}`));
      if (current.current !== ALL_ENVIRONMENTS && !all.includes(current.current) && all.length > 0) props.onChange(all.find((c) => c.endsWith("/development")) ?? all[0]);
    });
  }, []);
  return (
    <label>
      <span class="visually-hidden">Environment</span>
      <select value={props.value} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)} data-testid="environment-picker">
        <option value={ALL_ENVIRONMENTS}>All environments (runs)</option>
        {projects.map((p) => (
          <optgroup label={p.slug}>
            {p.environments.map((e) => (
              <option value={`${p.slug}/${e.slug}`}>{`${p.slug} / ${e.slug}${e.archived ? " (archived)" : ""}`}</option>
            ))}
          </optgroup>
        ))}
      </select>
    </label>
  );
}
