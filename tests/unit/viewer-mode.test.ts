// The mode's toolbar: the overlay button joins the end of mode-basic's primary section and every basic tool stays,
// whether the toolbar service appends to a section (OHIF 3.13) or replaces it (older releases).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mode, { addToSection, type ModeToolbar } from '../../mode/src/index.js';
import { OVERLAY_BUTTON_ID } from '../../extension/src/ids.js';

/** A toolbar service keeping sections as OHIF does; `appends` picks 3.13's updateSection or the older one. */
function fakeToolbar(appends: boolean): ModeToolbar & { state: { buttonSections: Record<string, string[]> }; buttons: string[] } {
  const state = { buttonSections: {} as Record<string, string[]> };
  const buttons: string[] = [];
  return {
    state,
    buttons,
    sections: { primary: 'primary' },
    register: (b) => buttons.push(...(b as { id: string }[]).map((x) => x.id)),
    updateSection(key, ids) {
      const existing = state.buttonSections[key];
      if (appends && existing) existing.push(...ids.filter((id) => !existing.includes(id)));
      else state.buttonSections[key] = [...ids];
    },
  };
}

const BASIC_PRIMARY = ['MeasurementTools', 'Zoom', 'Pan', 'WindowLevel', 'Layout', 'MoreTools'];

async function enterWith(toolbar: ModeToolbar): Promise<void> {
  const basic = {
    modeInstance: {
      routes: [{ path: 'basic', layoutTemplate: () => null, layoutInstance: { id: 'l', props: {} } }],
      onModeEnter({ servicesManager }: { servicesManager: { services: { toolbarService: ModeToolbar } } }) {
        servicesManager.services.toolbarService.register(BASIC_PRIMARY.map((id) => ({ id })));
        servicesManager.services.toolbarService.updateSection('primary', [...BASIC_PRIMARY]);
      },
    },
  };
  const instance = (await mode.modeFactory({ loadModules: async () => [basic] })) as unknown as { onModeEnter(a: unknown): void };
  instance.onModeEnter({ servicesManager: { services: { toolbarService: toolbar } } });
}

describe('mode toolbar', () => {
  for (const appends of [true, false]) {
    test(`the overlay button is added after basic's tools (${appends ? 'appending' : 'replacing'} updateSection)`, async () => {
      const toolbar = fakeToolbar(appends);
      await enterWith(toolbar);
      assert.deepEqual(toolbar.state.buttonSections.primary, [...BASIC_PRIMARY, OVERLAY_BUTTON_ID]);
      assert.ok(toolbar.buttons.includes(OVERLAY_BUTTON_ID), 'the button is registered');
    });
  }

  test('whatever basic puts in its section stays, and the button is never added twice', () => {
    const toolbar = fakeToolbar(false);
    toolbar.updateSection('primary', ['Zoom', 'SomethingNew']);
    addToSection(toolbar, 'primary', OVERLAY_BUTTON_ID);
    addToSection(toolbar, 'primary', OVERLAY_BUTTON_ID);
    assert.deepEqual(toolbar.state.buttonSections.primary, ['Zoom', 'SomethingNew', OVERLAY_BUTTON_ID]);
  });

  test('a section that does not exist yet gets the button alone', () => {
    const toolbar = fakeToolbar(true);
    addToSection(toolbar, 'secondary', OVERLAY_BUTTON_ID);
    assert.deepEqual(toolbar.state.buttonSections.secondary, [OVERLAY_BUTTON_ID]);
  });
});
