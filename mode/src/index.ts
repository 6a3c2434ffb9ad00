// OHIF v3 mode for chest radiographs (CR/DX): OHIF's basic viewer layout with the COVID-19 research panel on the
// right and an attention-overlay toggle added at the end of basic's own toolbar.
import { overlayButton, OVERLAY_BUTTON_ID, PANEL_ID } from '../../extension/src/ids.js';

export const MODE_ID = '@zerovar/ohif-mode-covid';
export const ROUTE_NAME = 'zerovar-chest';
const CHEST_MODALITIES = ['CR', 'DX'];

/** True for studies with a CR or DX series; OHIF passes modalities as one backslash-separated string. */
export function isChestRadiographStudy(modalities: string | undefined): boolean {
  return (modalities ?? '').split('\\').some((m) => CHEST_MODALITIES.includes(m.trim().toUpperCase()));
}

interface Route {
  path: string;
  layoutTemplate: (...args: unknown[]) => unknown;
  layoutInstance: { id: string; props: Record<string, unknown> };
}
interface ModeInstance {
  routes: Route[];
  onModeEnter?: (this: ModeInstance, args: EnterArgs) => void;
  [key: string]: unknown;
}
/** The part of OHIF's toolbar service the mode uses. */
export interface ModeToolbar {
  register(b: unknown[]): void;
  updateSection(k: string, ids: string[]): void;
  /** Section names (3.13: `sections.primary` is 'primary'). */
  sections?: { primary?: string };
  /** The button ids of each section, as basic left them. */
  state?: { buttonSections?: Record<string, string[] | undefined> };
}
interface EnterArgs {
  servicesManager: { services: { toolbarService: ModeToolbar } };
  [key: string]: unknown;
}

/**
 * Puts `buttonId` at the end of `section`, keeping every button already there: OHIF 3.13's updateSection
 * appends to an existing section, older ones replaced it, and given the whole list both keep basic's tools (and
 * whatever basic adds later) in front of ours.
 */
export function addToSection(toolbar: ModeToolbar, section: string, buttonId: string): void {
  const current = toolbar.state?.buttonSections?.[section] ?? [];
  toolbar.updateSection(section, current.includes(buttonId) ? [...current] : [...current, buttonId]);
}
type LoadModules = (names: string[]) => Promise<({ modeInstance: ModeInstance } | undefined)[]>;

async function modeFactory({ loadModules }: { modeConfiguration?: unknown; loadModules: LoadModules }) {
  const [basic] = await loadModules(['@ohif/mode-basic']);
  if (!basic?.modeInstance) throw new Error('@ohif/mode-basic is not part of this viewer');
  const base = basic.modeInstance;
  const baseRoute = base.routes[0];
  const layoutInstance = {
    ...baseRoute.layoutInstance,
    props: { ...baseRoute.layoutInstance.props, rightPanels: [PANEL_ID], rightPanelClosed: false },
  };
  const instance: ModeInstance = {
    ...base,
    id: MODE_ID,
    routeName: ROUTE_NAME,
    displayName: 'COVID-19 chest X-ray (research)',
    hide: false,
    isValidMode({ modalities }: { modalities?: string }) {
      const valid = isChestRadiographStudy(modalities);
      return { valid, description: valid ? 'Chest radiograph (CR/DX)' : 'This mode needs a CR or DX series' };
    },
    onModeEnter(this: ModeInstance, args: EnterArgs) {
      base.onModeEnter?.call(this, args);
      const { toolbarService } = args.servicesManager.services;
      toolbarService.register([overlayButton]);
      addToSection(toolbarService, toolbarService.sections?.primary ?? 'primary', OVERLAY_BUTTON_ID);
    },
    routes: [{ ...baseRoute, path: ROUTE_NAME, layoutInstance }],
  };
  return instance;
}

const mode = {
  id: MODE_ID,
  modeFactory,
  extensionDependencies: {
    '@ohif/extension-default': '^3.0.0',
    '@ohif/extension-cornerstone': '^3.0.0',
  },
};

export default mode;
